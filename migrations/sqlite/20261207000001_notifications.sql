-- Notifications (issue 9): per collective, channels (signed webhooks, email) that receive the
-- events they chose; every notification is a delivery row written in the transaction of the
-- change that caused it (an outbox), delivered by a worker with retries and kept as a log.
CREATE TABLE notification_channels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT NOT NULL REFERENCES collectives (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- webhook | email
    kind TEXT NOT NULL,
    -- webhook: the URL, sealed (hook URLs often carry a token); email: the addresses, sealed too
    target_enc BLOB NOT NULL,
    -- what the pages show: the webhook's scheme and host, or the email addresses
    target_shown TEXT NOT NULL,
    -- webhook: the HMAC-SHA256 signing key, sealed; shown once when the channel is made
    secret_enc BLOB,
    -- the events it receives: a JSON array of event names
    events TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (collective_id, name)
);

CREATE TABLE notification_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collective_id BIGINT REFERENCES collectives (id) ON DELETE CASCADE,
    -- a channel's delivery, or a person's own email (user_id)
    channel_id BIGINT REFERENCES notification_channels (id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- the event as JSON (what a webhook receives as its body's "data")
    payload TEXT NOT NULL,
    -- pending | sending | delivered | failed
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- a delivery being sent belongs to the replica that claimed it until then
    lease_until BIGINT,
    -- the HTTP status or SMTP reply code of the last attempt
    last_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);
CREATE INDEX notification_deliveries_collective ON notification_deliveries (collective_id, id);

-- The federation's outgoing mail relay (one row, id 1): email channels and personal
-- notifications are sent through it.
CREATE TABLE mail_settings (
    id BIGINT PRIMARY KEY,
    host TEXT NOT NULL,
    port BIGINT NOT NULL,
    -- starttls | tls | none
    security TEXT NOT NULL,
    username TEXT,
    password_enc BLOB,
    sender TEXT NOT NULL,
    -- a CA certificate (PEM) the relay's certificate is checked against, besides the system's
    ca_pem TEXT,
    updated_by_name TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A person's own notifications: 1 = email me when a release proposal awaits my review.
ALTER TABLE users ADD COLUMN notify_reviews BIGINT NOT NULL DEFAULT 0;
-- An app seen failing while no job ran (its tasks dying), once per episode; NULL when healthy.
ALTER TABLE apps ADD COLUMN unhealthy_since BIGINT;
ALTER TABLE apps ADD COLUMN unhealthy_last_at BIGINT;
ALTER TABLE apps ADD COLUMN unhealthy_reason TEXT;
-- A server whose engine could not be reached for a while, once per outage; NULL when reached.
ALTER TABLE servers ADD COLUMN unreachable_since BIGINT;
ALTER TABLE servers ADD COLUMN unreachable_notified BIGINT NOT NULL DEFAULT 0;
-- The newest release whose "new release" notice went out (replicas announce each once).
ALTER TABLE recipes ADD COLUMN announced_version TEXT;
