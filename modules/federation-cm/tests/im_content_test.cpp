// IM bodies (IM-1) and the INVITE's ms-text-format header (IM-2).
#include <imp/federation_cm/im_content.h>

#include <imp/federation_cm/media_type.h>

#include <doctest/doctest.h>

#include <string>

using namespace imp::fcm;

namespace {

constexpr std::string_view kEmoji = "\xF0\x9F\x98\x80 \xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF :-)";

std::string text(const DecodedBody& d) {
  if (const auto* t = std::get_if<ImText>(&d)) return t->text;
  FAIL_CHECK("unsupported: " << std::get<Unsupported>(d).why);
  return {};
}

std::string refused(const DecodedBody& d) {
  const auto* u = std::get_if<Unsupported>(&d);
  REQUIRE_MESSAGE(u, "decoded as text: " << std::get<ImText>(d).text);
  CHECK_FALSE(u->why.empty());
  return u->why;
}

std::string multipart(std::string_view boundary, std::initializer_list<std::string> parts, bool close = true) {
  std::string out = "preamble to be ignored\r\n";
  for (const auto& p : parts) out += "--" + std::string(boundary) + "\r\n" + p + "\r\n";
  if (close) out += "--" + std::string(boundary) + "--\r\nepilogue\r\n";
  return out;
}

}  // namespace

// ---- media types ----------------------------------------------------------------

TEST_CASE("parseMediaType: types, parameters, quoting, Lync's base64 values") {
  auto m = parseMediaType("Text/Plain; Charset=\"UTF-8\" ;msgr=WAAtAE0ATQ==; x=\"a\\\"b;c\"");
  REQUIRE(m);
  CHECK(m->essence() == "text/plain");
  CHECK(m->is("TEXT/plain"));
  REQUIRE(m->param("charset"));
  CHECK(*m->param("charset") == "UTF-8");
  CHECK(*m->param("msgr") == "WAAtAE0ATQ==");
  CHECK(*m->param("x") == "a\"b;c");
  CHECK_FALSE(m->param("missing"));
  CHECK(parseMediaType("text/plain;"));
  CHECK_FALSE(parseMediaType(""));
  CHECK_FALSE(parseMediaType("text"));
  CHECK_FALSE(parseMediaType("text/"));
  CHECK_FALSE(parseMediaType("text/plain charset=utf-8"));
  CHECK_FALSE(parseMediaType("text/plain; charset"));
  CHECK_FALSE(parseMediaType("text/plain; charset="));
  CHECK_FALSE(parseMediaType("text/plain; x=\"unterminated"));
}

TEST_CASE("acceptsMediaType: Accept lines, ranges, the most specific match and q=0 (RFC 3261 §20.1)") {
  using V = std::vector<std::string_view>;
  const std::string_view pidf = "application/pidf+xml";
  CHECK(acceptsMediaType({}, pidf));  // no Accept: the default
  CHECK(acceptsMediaType(V{"application/xpidf+xml, text/xml+msrtc.pidf, Application/PIDF+XML"}, pidf));
  // one value per Accept line
  CHECK(acceptsMediaType(V{"application/xpidf+xml", "application/pidf+xml"}, pidf));
  CHECK(acceptsMediaType(V{"application/*"}, pidf));
  CHECK(acceptsMediaType(V{"*/*"}, pidf));
  CHECK(acceptsMediaType(V{"application/pidf+xml;q=0.5"}, pidf));
  CHECK_FALSE(acceptsMediaType(V{"application/xpidf+xml, text/plain"}, pidf));
  CHECK_FALSE(acceptsMediaType(V{"application/pidf+xml-diff"}, pidf));
  CHECK_FALSE(acceptsMediaType(V{"text/*"}, pidf));
  CHECK_FALSE(acceptsMediaType(V{"application/pidf+xml;q=0"}, pidf));
  CHECK_FALSE(acceptsMediaType(V{"application/pidf+xml; q=0.000"}, pidf));
  // the most specific range decides, in either order
  CHECK_FALSE(acceptsMediaType(V{"*/*, application/pidf+xml;q=0"}, pidf));
  CHECK_FALSE(acceptsMediaType(V{"application/pidf+xml;q=0", "application/*"}, pidf));
  CHECK(acceptsMediaType(V{"application/*;q=0, application/pidf+xml"}, pidf));
  // a comma inside a quoted parameter does not split; a range not understood is skipped
  CHECK(acceptsMediaType(V{"text/x;a=\"1,2\", application/pidf+xml"}, pidf));
  CHECK(acceptsMediaType(V{"garbage, application/pidf+xml"}, pidf));
  CHECK_FALSE(acceptsMediaType(V{"garbage"}, pidf));
}

// ---- text/plain ---------------------------------------------------------------------

TEST_CASE("text/plain: UTF-8 passes unchanged, emoticons and all (IM-1)") {
  CHECK(text(decodeBody("text/plain; charset=UTF-8", kEmoji)) == kEmoji);
  CHECK(text(decodeBody("text/plain", kEmoji)) == kEmoji);
  CHECK(text(decodeBody("text/plain;charset=utf8", "hi")) == "hi");
  CHECK(text(decodeBody("TEXT/PLAIN; charset=us-ascii", "plain <b>not html</b> &amp;")) ==
        "plain <b>not html</b> &amp;");
  CHECK(text(decodeBody("text/plain; charset=UTF-8", "")) == "");
}

TEST_CASE("text/plain: Lync's msgr= parameter is ignored") {
  CHECK(text(decodeBody("text/plain; charset=UTF-8;msgr=WAAtAE0ATQBTAC0ASQBNAC0ARgBvAHIAbQBhAHQAOgAgAEYATgA9AE0AUwAl"
                        "ADIAMABTAGgAZQBsAGwAJQAyADAARABsAGcAJQAyADAAMgA7ACAARQBGAD0AOwAgAEMATwA9ADAAOwAgAEMAUwA9ADAAOwAg"
                        "AFAARgA9ADAACgANAAoADQA",
                        "Hello Bob")) == "Hello Bob");
}

TEST_CASE("text/plain: other charsets and invalid UTF-8 are unsupported") {
  CHECK(refused(decodeBody("text/plain; charset=ISO-8859-1", "caf\xE9")).find("ISO-8859-1") != std::string::npos);
  CHECK(refused(decodeBody("text/plain; charset=UTF-8", "caf\xE9")).find("UTF-8") != std::string::npos);
  refused(decodeBody("text/plain", "\xC0\xAF"));              // overlong '/'
  refused(decodeBody("text/plain", "\xED\xA0\x80"));          // surrogate
  refused(decodeBody("text/plain", "\xF4\x90\x80\x80"));      // above U+10FFFF
  refused(decodeBody("text/plain", "\xE3\x81"));              // truncated sequence
  refused(decodeBody("text/plain; charset=us-ascii", "\xC3\xA9"));
}

TEST_CASE("validUtf8") {
  CHECK(validUtf8(""));
  CHECK(validUtf8(kEmoji));
  CHECK(validUtf8("\xF4\x8F\xBF\xBF"));
  CHECK_FALSE(validUtf8("\x80"));
  CHECK_FALSE(validUtf8("\xE0\x80\x80"));
  CHECK_FALSE(validUtf8("\xF0\x80\x80\x80"));
  CHECK_FALSE(validUtf8("\xFF"));
}

// ---- text/html ---------------------------------------------------------------------

TEST_CASE("text/html: tags stripped, <br> to newline, entities decoded") {
  CHECK(text(decodeBody("text/html", "<b>bold</b> and <i>it</i><br>line 2<BR/>line 3<br />end")) ==
        "bold and it\nline 2\nline 3\nend");
  CHECK(text(decodeBody("text/html; charset=UTF-8", "&lt;tag&gt; &amp; &quot;q&quot; &apos;a&apos;")) ==
        "<tag> & \"q\" 'a'");
  CHECK(text(decodeBody("text/html", "&#65;&#x42;&#X43; &#128512; &#x1F600;")) ==
        "ABC \xF0\x9F\x98\x80 \xF0\x9F\x98\x80");
  CHECK(text(decodeBody("text/html", "a&nbsp;b")) == "a b");
}

TEST_CASE("text/html: Lync's formatted IM") {
  CHECK(text(decodeBody("text/html",
                        "<SPAN style=\"FONT-FAMILY: Segoe UI; COLOR: #000000\">Hello &lt;Bob&gt; "
                        "\xF0\x9F\x98\x80 :-)</SPAN>")) == "Hello <Bob> \xF0\x9F\x98\x80 :-)");
  CHECK(text(decodeBody("text/html", "<div>one</div><div>two</div>")) == "one\ntwo");
  CHECK(text(decodeBody("text/html", "<p>para</p>")) == "para");
}

TEST_CASE("text/html: invalid references and unknown entities stay as written") {
  CHECK(htmlToText("&copy; &#0; &#xD800; &#x110000; &#; &#x; &amp &unterminated") ==
        "&copy; &#0; &#xD800; &#x110000; &#; &#x; &amp &unterminated");
  CHECK(htmlToText("&#99999999999999999999;") == "&#99999999999999999999;");
}

TEST_CASE("text/html: '<' that starts no tag is text; quotes hide '>'") {
  CHECK(htmlToText("1 < 2 and 3 <= 4") == "1 < 2 and 3 <= 4");
  CHECK(htmlToText("<a title='x > y' href=\"a>b\">link</a>") == "link");
}

TEST_CASE("text/html: comments, script, style and head contents removed") {
  CHECK(htmlToText("a<!-- hidden <b>x</b> -->b") == "ab");
  CHECK(htmlToText("<html><head><title>t</title></head><body>hi<script>var x = '<b>';</script>"
                   "<STYLE>p{}</STYLE>!</body></html>") == "hi!");
  CHECK(htmlToText("x<!-- never closed") == "x");
  CHECK(htmlToText("x<script>never closed") == "x");
  CHECK(htmlToText("<!DOCTYPE html><?xml version='1.0'?>y") == "y");
}

TEST_CASE("text/html: an unterminated tag ends the text") {
  CHECK(htmlToText("ok <b") == "ok ");
  CHECK(htmlToText("ok <a href='x>") == "ok ");
}

TEST_CASE("text/html: invalid UTF-8 is unsupported") {
  refused(decodeBody("text/html", "<b>\xFF</b>"));
}

// ---- multipart/alternative ---------------------------------------------------

TEST_CASE("multipart/alternative: text/plain is preferred") {
  const std::string body = multipart("b1", {"Content-Type: text/html\r\n\r\n<b>rich</b>",
                                            "Content-Type: text/plain; charset=UTF-8\r\n\r\nplain " + std::string(kEmoji)});
  CHECK(text(decodeBody("multipart/alternative; boundary=b1", body)) == "plain " + std::string(kEmoji));
}

TEST_CASE("multipart/alternative: text/html when there is no text/plain") {
  const std::string body = multipart("xyz", {"Content-Type: application/octet-stream\r\n\r\n\x01\x02",
                                             "Content-Type: text/html; charset=UTF-8\r\n\r\n<i>only</i> html"});
  CHECK(text(decodeBody("multipart/alternative; boundary=\"xyz\"", body)) == "only html");
}

TEST_CASE("multipart/alternative: part without Content-Type is text/plain; LF line ends") {
  const std::string body = "--sep\n\nfirst line\nsecond line\n--sep--\n";
  CHECK(text(decodeBody("multipart/alternative;boundary=sep", body)) == "first line\nsecond line");
}

TEST_CASE("multipart/alternative: base64 parts, folded headers, a preamble-free body") {
  const std::string body =
      "--=_b\r\nContent-Type: text/plain;\r\n charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
      "SGVsbG8g\r\nQm9i\r\n--=_b--";
  CHECK(text(decodeBody("multipart/alternative; boundary=\"=_b\"", body)) == "Hello Bob");
}

TEST_CASE("multipart/alternative: a delimiter-like line that is longer is content") {
  const std::string body = "--b\r\n\r\nline\r\n--bb not a delimiter\r\nend\r\n--b--\r\n";
  CHECK(text(decodeBody("multipart/alternative; boundary=b", body)) == "line\r\n--bb not a delimiter\r\nend");
}

TEST_CASE("multipart/alternative: nested alternative") {
  const std::string inner = multipart("in", {"Content-Type: text/plain\r\n\r\ninner text"});
  const std::string body = multipart("out", {"Content-Type: multipart/alternative; boundary=in\r\n\r\n" + inner});
  CHECK(text(decodeBody("multipart/alternative; boundary=out", body)) == "inner text");
}

TEST_CASE("multipart/alternative: bad boundaries are unsupported") {
  const std::string body = multipart("b1", {"Content-Type: text/plain\r\n\r\nhi"});
  CHECK(refused(decodeBody("multipart/alternative", body)).find("boundary") != std::string::npos);
  refused(decodeBody("multipart/alternative; boundary=\"\"", body));
  refused(decodeBody("multipart/alternative; boundary=" + std::string(71, 'a'), body));
  CHECK(refused(decodeBody("multipart/alternative; boundary=other", body)).find("delimiter") != std::string::npos);
  // Truncated: no close delimiter.
  CHECK(refused(decodeBody("multipart/alternative; boundary=b1",
                           multipart("b1", {"Content-Type: text/plain\r\n\r\nhi"}, false)))
            .find("close") != std::string::npos);
  // Delimiter followed by junk on its line.
  refused(decodeBody("multipart/alternative; boundary=b1", "--b1-x\r\n\r\nhi\r\n--b1--"));
}

TEST_CASE("multipart/alternative: no usable part is unsupported") {
  refused(decodeBody("multipart/alternative; boundary=b",
                     multipart("b", {"Content-Type: image/png\r\n\r\nPNG", "Content-Type: text/plain\r\n"})));
  refused(decodeBody("multipart/alternative; boundary=b", "--b--\r\n"));  // no parts at all
  refused(decodeBody("multipart/alternative; boundary=b",
                     multipart("b", {"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!"})));
  refused(decodeBody("multipart/alternative; boundary=b",
                     multipart("b", {"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                                     "a=3Db"})));
  refused(decodeBody("multipart/alternative; boundary=b", multipart("b", {"no colon header\r\n\r\nbody"})));
}

TEST_CASE("multipart/alternative: nesting and part counts are bounded") {
  std::string body = "Content-Type: text/plain\r\n\r\ndeep";
  for (int i = 0; i < 5; ++i) {
    const std::string b = "l" + std::to_string(i);
    body = "Content-Type: multipart/alternative; boundary=" + b + "\r\n\r\n" + multipart(b, {body});
  }
  const std::size_t split = body.find("\r\n\r\n");
  refused(decodeBody(body.substr(14, split - 14), body.substr(split + 4)));
  std::string many;
  for (int i = 0; i < 40; ++i) many += "--m\r\nContent-Type: image/png\r\n\r\nx\r\n";
  many += "--m--\r\n";
  CHECK(refused(decodeBody("multipart/alternative; boundary=m", many)).find("32") != std::string::npos);
}

// ---- everything else -----------------------------------------------------------

TEST_CASE("other content types are unsupported (the caller answers 415)") {
  CHECK(refused(decodeBody("application/octet-stream", "x")).find("application/octet-stream") != std::string::npos);
  refused(decodeBody("multipart/mixed; boundary=b", "--b\r\n\r\nx\r\n--b--"));
  refused(decodeBody("application/im-iscomposing+xml", "<isComposing/>"));
  refused(decodeBody("", "x"));
  refused(decodeBody("text", "x"));
}

TEST_CASE("huge bodies are unsupported") {
  CHECK(refused(decodeBody("text/plain", std::string(kMaxImBodyBytes + 1, 'a'))).find("bytes") != std::string::npos);
  CHECK(text(decodeBody("text/plain", std::string(kMaxImBodyBytes, 'a'))).size() == kMaxImBodyBytes);
}

// ---- ms-text-format -------------------------------------------------------------

TEST_CASE("ms-text-format: Lync's INVITE header") {
  auto r = parseMsTextFormat(
      "text/plain; charset=UTF-8;msgr=WAAtAE0ATQBTAC0ASQBNAC0ARgBvAHIAbQBhAHQAOgAgAEYATgA9AE0AUwAlADIAMABTAGgAZQBsAGwAJ"
      "QAyADAARABsAGcAJQAyADAAMgA7ACAARQBGAD0AOwAgAEMATwA9ADAAOwAgAEMAUwA9ADAAOwAgAFAARgA9ADAACgANAAoADQA;"
      "ms-body=SGVsbG8gQm9i");
  REQUIRE(r);
  CHECK(r->second == "Hello Bob");
  CHECK(r->first.starts_with("text/plain; charset=UTF-8; msgr=WAAtAE0A"));
  CHECK(r->first.find("ms-body") == std::string::npos);
  CHECK(text(decodeBody(r->first, r->second)) == "Hello Bob");
}

TEST_CASE("ms-text-format: build and parse back, emoticons and non-ASCII unchanged") {
  const std::string h = buildMsTextFormat(kEmoji);
  CHECK(h.starts_with("text/plain; charset=UTF-8;ms-body="));
  auto r = parseMsTextFormat(h);
  REQUIRE(r);
  CHECK(r->first == "text/plain; charset=UTF-8");
  CHECK(r->second == kEmoji);
  CHECK(text(decodeBody(r->first, r->second)) == kEmoji);
  // Every padding length.
  for (std::string s : {"a", "ab", "abc", "abcd"}) {
    auto back = parseMsTextFormat(buildMsTextFormat(s));
    REQUIRE(back);
    CHECK(back->second == s);
  }
}

TEST_CASE("ms-text-format: a quoted parameter is re-quoted") {
  auto r = parseMsTextFormat("text/html; x=\"a b;c\"; ms-body=aGk=");
  REQUIRE(r);
  CHECK(r->first == "text/html; x=\"a b;c\"");
  CHECK(text(decodeBody(r->first, r->second)) == "hi");
}

TEST_CASE("ms-text-format: bad base64, missing body, bad header") {
  CHECK_FALSE(parseMsTextFormat("text/plain; charset=UTF-8;ms-body=SGVsbG8gQm9"));    // truncated
  CHECK_FALSE(parseMsTextFormat("text/plain; charset=UTF-8;ms-body=SGVsbG8gQm9i="));  // bad padding
  CHECK_FALSE(parseMsTextFormat("text/plain; charset=UTF-8;ms-body=SGVsbG8=Qm9i"));   // '=' inside
  CHECK_FALSE(parseMsTextFormat("text/plain; charset=UTF-8;ms-body=SGV*bG8g"));       // alphabet
  CHECK_FALSE(parseMsTextFormat("text/plain; charset=UTF-8;ms-body=aGl="));           // non-zero pad bits
  CHECK_FALSE(parseMsTextFormat("text/plain; charset=UTF-8"));
  CHECK_FALSE(parseMsTextFormat("text/plain; charset=UTF-8;ms-body="));
  CHECK_FALSE(parseMsTextFormat(""));
  CHECK_FALSE(parseMsTextFormat("ms-body=SGVsbG8gQm9i"));
}
