-- Mentions: whom a message addresses, as its JSON says ({"users": [...], "room": bool}, NULL
-- for no one), on the message and on each version its edits replaced.
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE message_edits ADD COLUMN mentions TEXT;
