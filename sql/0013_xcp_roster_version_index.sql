-- xcp-router: the (owner, version) index of roster items goes. Its one
-- reader, the roster delta of RFC 6121 §2.6 (items of one owner changed
-- since a version), reads the owner's items through the (owner, contact)
-- key at the same cost: a roster is a few hundred items (PS-1). Every item
-- written paid for it, and the MG-7 bulk import writes millions
-- (B-BAT-IMPORT, issue 18).
DROP INDEX IF EXISTS xcp_roster_item_version ON xcp_roster_item;
