DROP TABLE bucket_usage;
DROP TABLE user_quotas;
DROP TABLE bucket_quotas;
