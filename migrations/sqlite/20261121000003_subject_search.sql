-- Indexed subject search: a trigram FTS5 index over the case-folded subject.
-- External content: the text lives in `emails`, the index holds only trigrams.
-- Queries of 3+ characters match through the index (then are rechecked with instr).
CREATE VIRTUAL TABLE emails_subject_trigrams USING fts5(
    subject_folded,
    content = 'emails',
    content_rowid = 'rowid',
    tokenize = 'trigram case_sensitive 1'
);

INSERT INTO emails_subject_trigrams (emails_subject_trigrams) VALUES ('rebuild');

CREATE TRIGGER emails_subject_trigrams_insert AFTER INSERT ON emails BEGIN
    INSERT INTO emails_subject_trigrams (rowid, subject_folded)
    VALUES (new.rowid, new.subject_folded);
END;

CREATE TRIGGER emails_subject_trigrams_delete AFTER DELETE ON emails BEGIN
    INSERT INTO emails_subject_trigrams (emails_subject_trigrams, rowid, subject_folded)
    VALUES ('delete', old.rowid, old.subject_folded);
END;

CREATE TRIGGER emails_subject_trigrams_update AFTER UPDATE OF subject_folded ON emails BEGIN
    INSERT INTO emails_subject_trigrams (emails_subject_trigrams, rowid, subject_folded)
    VALUES ('delete', old.rowid, old.subject_folded);
    INSERT INTO emails_subject_trigrams (rowid, subject_folded)
    VALUES (new.rowid, new.subject_folded);
END;

-- Short (under 3 characters) and common subjects walk the newest-first order instead;
-- carrying the subject in that index lets them test each email without reading its row.
DROP INDEX emails_newest_first;
CREATE INDEX emails_newest_first ON emails (received_at DESC, id DESC, subject_folded);
