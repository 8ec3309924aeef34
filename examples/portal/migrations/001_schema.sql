-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX tickets_newest ON tickets (created_at DESC, id DESC);

CREATE TABLE replies (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    body TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX replies_ticket ON replies (ticket_id, created_at);

CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    name TEXT NOT NULL,
    s3_key TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE notices (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Open WebSocket connections (a DynamoDB table on AWS, usually).
CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
