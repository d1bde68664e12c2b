-- Subjects join the trigram index in bulk, written by the inbound writer every so many
-- emails, instead of by a trigger in every commit: FTS5 writes a new segment per
-- transaction, which cost a third of the writer's time. `indexed_up_to` marks how far the
-- index goes; searches check the few newer emails directly (store/sqlite.rs).
-- Mailroom never deletes emails, so a rowid past the mark is never reused below it.
DROP TRIGGER emails_subject_trigrams_insert;

CREATE TABLE subject_index_progress (
    only_row      INTEGER PRIMARY KEY CHECK (only_row = 1),
    indexed_up_to INTEGER NOT NULL  -- every email with a rowid up to this is indexed
);
INSERT INTO subject_index_progress VALUES (1, (SELECT coalesce(max(rowid), 0) FROM emails));

-- Deletes and subject changes touch the index only for emails already in it.
DROP TRIGGER emails_subject_trigrams_delete;
CREATE TRIGGER emails_subject_trigrams_delete AFTER DELETE ON emails
WHEN old.rowid <= (SELECT indexed_up_to FROM subject_index_progress) BEGIN
    INSERT INTO emails_subject_trigrams (emails_subject_trigrams, rowid, subject_folded)
    VALUES ('delete', old.rowid, old.subject_folded);
END;

DROP TRIGGER emails_subject_trigrams_update;
CREATE TRIGGER emails_subject_trigrams_update AFTER UPDATE OF subject_folded ON emails
WHEN old.rowid <= (SELECT indexed_up_to FROM subject_index_progress) BEGIN
    INSERT INTO emails_subject_trigrams (emails_subject_trigrams, rowid, subject_folded)
    VALUES ('delete', old.rowid, old.subject_folded);
    INSERT INTO emails_subject_trigrams (rowid, subject_folded)
    VALUES (new.rowid, new.subject_folded);
END;
