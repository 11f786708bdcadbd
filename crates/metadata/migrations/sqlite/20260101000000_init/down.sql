DROP TABLE revision;
DROP TABLE access_keys;
DROP TABLE grants;
DROP TABLE buckets;
DROP TABLE users;
