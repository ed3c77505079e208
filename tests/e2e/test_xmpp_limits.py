"""The contact-list limit with a real client (issue 16 deliverable 6; PS-1):
with `impctl presence settings set --max-contacts 2` a third roster add is
refused with a precise error (policy-violation, type modify: the user can
remove a contact and retry), the roster keeps its two contacts, and raising
the limit applies live, with no restart."""
import slixmpp

import xmpp_server
from xmpp_client import TIMEOUT, XmppTestCase


class XmppLimits(XmppTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = xmpp_server.start_server(cls)
        for u in ("ann", "bob", "carol", "dave"):
            cls.server.add_user(u, "pw-%s-3" % u)

    async def roster_add(self, client, jid):
        iq = client.Iq()
        iq["type"] = "set"
        iq["roster"]["items"] = {jid: {"name": jid.split("@")[0], "subscription": "none", "groups": ["Team"]}}
        return await iq.send(timeout=TIMEOUT)

    async def test_01_contact_list_limit_exceeded_is_an_error_PS_1(self):
        self.server.set_max_contacts(2)
        ann = await self.client("ann", "pc")
        await ann.login()
        await self.roster_add(ann, "bob@example.com")
        await self.roster_add(ann, "carol@example.com")
        with self.assertRaises(slixmpp.exceptions.IqError) as e:
            await self.roster_add(ann, "dave@example.com")
        err = e.exception.iq["error"]
        # slixmpp 1.8's error stanza knows only the RFC 3920 conditions and
        # reports RFC 6120's policy-violation (§8.3.3.12) as '': read the
        # condition element from the XML itself.
        conds = [c.tag.split("}", 1)[1] for c in err.xml
                 if c.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}") and not c.tag.endswith("}text")]
        self.assertEqual(conds, ["policy-violation"])
        self.assertEqual(err["type"], "modify")
        self.assertIn("2", err["text"])  # the error names the limit
        self.assertEqual(sorted(await ann.roster_items()), ["bob@example.com", "carol@example.com"])
        # the setting applies live (PS-1): 0 = no limit
        self.server.set_max_contacts(0)
        await self.roster_add(ann, "dave@example.com")
        self.assertEqual(sorted(await ann.roster_items()), ["bob@example.com", "carol@example.com", "dave@example.com"])


if __name__ == "__main__":
    xmpp_server.main()
