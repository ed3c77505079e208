// B-SIP-PARSE: parse + serialize throughput of the SIP corpus, messages per
// second on one core. Not a test: run by hand (see docs/BENCHMARKS.md).
//
//   sip_parse_bench CORPUS_DIR [seconds-per-run=3] [runs=3]
//
// Two sets: "typical" = the Lync-dialect corpus (tests/corpus/sip/lync:
// INVITE with SDP, MESSAGE, INFO, SUBSCRIBE, NOTIFY with PIDF, 200 with
// signed Record-Route, 488), and "rfc4475" = every torture message the
// parser accepts. Each run parses and serialises the set round-robin for the
// given time; the median, min and max of the runs are printed.
#include <imp/sip/parser.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace imp::sip;

namespace {

std::vector<std::string> load(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".dat") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  Parser p;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (std::holds_alternative<Message>(p.parseDatagram(s))) out.push_back(std::move(s));
  }
  return out;
}

double run(const std::vector<std::string>& set, double seconds, std::size_t& sink) {
  Parser p;
  std::string out;
  std::size_t n = 0;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  while (true) {
    for (int batch = 0; batch < 1000; ++batch) {
      const auto& text = set[n % set.size()];
      auto r = p.parseDatagram(text);
      auto& m = std::get<Message>(r);
      out.clear();
      m.serializeTo(out);
      sink += out.size();
      ++n;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return static_cast<double>(n) / took.count();
}

void report(const char* name, const std::vector<std::string>& set, double seconds, int runs) {
  std::size_t sink = 0, bytes = 0;
  for (const auto& s : set) bytes += s.size();
  std::vector<double> rates;
  for (int i = 0; i < runs; ++i) rates.push_back(run(set, seconds, sink));
  std::sort(rates.begin(), rates.end());
  std::printf("%-8s %2zu messages, avg %4zu bytes: median %.0f msg/s (min %.0f, max %.0f) [%zu]\n", name, set.size(),
              bytes / set.size(), rates[rates.size() / 2], rates.front(), rates.back(), sink % 10);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [seconds-per-run] [runs]\n", argv[0]);
    return 64;
  }
  std::filesystem::path dir = argv[1];
  double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  int runs = argc > 3 ? std::atoi(argv[3]) : 3;
  auto typical = load(dir / "lync");
  auto torture = load(dir / "rfc4475");
  if (typical.empty() || torture.empty()) {
    std::fprintf(stderr, "no corpus under %s\n", dir.c_str());
    return 66;
  }
  report("typical", typical, seconds, runs);
  report("rfc4475", torture, seconds, runs);
  return 0;
}
