"""Directory, first part (PS-3, PS-5, FED-6 data): users and presence domains
through impctl and the admin API, with a bad-input sweep that stores nothing."""
import json
import unittest

from harness import Impd


class Directory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Impd("dir1")
        cls.node.start()

    @classmethod
    def tearDownClass(cls):
        cls.node.cleanup()

    def users(self):
        return {u["userid"]: u for u in self.node.ctl_json("user", "list")["users"]}

    def test_01_users_and_domains(self):
        n = self.node
        n.ctl("domain", "add", "Example.COM", "--description", "shared with Lync")
        n.ctl("user", "add", "ann", "--im-address", "ann@EXAMPLE.com", "--home-node", "dir1")
        n.ctl("user", "add", "bob", "--im-address", "bob@example.com", "--unlicensed",
              "--ms-uri", "sip:bob@example.com")
        n.ctl("user", "add", "cy", "--im-address", "cy@other.example.org")
        users = self.users()
        self.assertEqual(users["ann"]["im_address"], "ann@example.com")
        self.assertEqual(users["ann"]["home_node"], "dir1")
        self.assertTrue(users["ann"]["licensed"])
        self.assertFalse(users["bob"]["licensed"])
        self.assertEqual(users["bob"]["ms_sip_uri"], "sip:bob@example.com")
        out = n.ctl("user", "show", "bob").stdout
        self.assertRegex(out, r"bob\s+bob@example.com\s+no\s+-\s+sip:bob@example.com")
        self.assertEqual(set(u["userid"] for u in n.ctl_json("user", "list", "--domain", "example.com")["users"]),
                         {"ann", "bob"})
        domains = {d["domain"]: d for d in n.ctl_json("domain", "list")["domains"]}
        self.assertEqual(domains["example.com"]["status"], "configured on local cluster")
        self.assertEqual(domains["example.com"]["local_users"], 2)
        self.assertEqual(domains["other.example.org"]["status"], "in use on local cluster")
        self.assertEqual(domains["other.example.org"]["managed_by"], "system")
        self.assertIn("example.com", n.ctl("domain", "list").stdout)

    def test_02_bad_input_stores_nothing(self):
        n = self.node
        before_users = self.users()
        before_domains = n.ctl_json("domain", "list")
        cases = [
            (["user", "add", "a b", "--im-address", "x@example.com"], "userid may hold only letters"),
            (["user", "add", "dan", "--im-address", "dan"], "IM address must be user@domain"),
            (["user", "add", "dan", "--im-address", "dan@localhost"], "needs at least two labels"),
            (["user", "add", "dan", "--im-address", "dan@example.com", "--home-node", "ghost"],
             "home node 'ghost' is not a node of this cluster"),
            (["user", "add", "dan", "--im-address", "dan@example.com", "--ms-uri", "tel:+1"],
             "Microsoft SIP URI must use the sip: scheme"),
            (["user", "add", "ann", "--im-address", "ann2@example.com"], "user 'ann' already exists"),
            (["user", "add", "dan", "--im-address", "ANN@example.com"],
             "IM address 'ann@example.com' already belongs to user 'ann'"),
            (["domain", "add", "bad_domain.com"], "may hold only letters, digits"),
            (["domain", "add", "example.com"], "domain 'example.com' is already configured"),
            (["domain", "delete", "example.com"], "is in use by 2 user(s)"),
            (["user", "delete", "nobody"], "no user 'nobody'"),
            (["user", "show", "nobody"], "no user 'nobody'"),
        ]
        for args, message in cases:
            r = n.ctl(*args, check=False)
            self.assertEqual(r.returncode, 1, (args, r.stderr))
            self.assertIn(message, r.stderr, args)
        code, body = n.http("POST", "/api/v1/users", body=b'{"userid": "eve", "im_address": "eve@example.com", "colour": 1}')
        self.assertEqual(code, 400)
        self.assertIn("unknown field 'colour'", body)
        code, body = n.http("POST", "/api/v1/users", body=b'{"userid": "eve", "im_address": "eve@example.com", "licensed": "yes"}')
        self.assertEqual(code, 400)
        self.assertEqual(json.loads(body)["error"]["field"], "licensed")
        self.assertEqual(self.users(), before_users)
        self.assertEqual(n.ctl_json("domain", "list"), before_domains)

    def test_03_delete(self):
        n = self.node
        n.ctl("user", "delete", "cy")
        self.assertNotIn("cy", self.users())
        self.assertNotIn("other.example.org", {d["domain"] for d in n.ctl_json("domain", "list")["domains"]})


if __name__ == "__main__":
    unittest.main(verbosity=2)
