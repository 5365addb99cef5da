DROP TABLE evidence_chunks;
DROP TABLE evidence;
DROP TABLE transitions;
DROP TABLE reviews;
DROP TABLE milestones;
