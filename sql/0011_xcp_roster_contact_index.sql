-- xcp-router: lookups by contact for the MG-9 contact ID rename (bulk job):
-- every roster item, remembered privacy decision (AV-1) and block list item
-- (XEP-0191) that names a renamed contact ID, in any user's data, without a
-- scan of the whole table per renamed ID. The tables' keys start with the
-- owner; these add the other side.
CREATE INDEX IF NOT EXISTS xcp_roster_item_by_contact ON xcp_roster_item (contact);

CREATE INDEX IF NOT EXISTS xcp_privacy_decision_by_watcher ON xcp_privacy_decision (watcher);

CREATE INDEX IF NOT EXISTS xcp_block_by_blocked ON xcp_block (blocked);
