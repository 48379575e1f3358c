-- Idempotency-Key of POSTs to /api/v1: the first request's fingerprint and, once it answered,
-- its answer (kept a day; see domain/idempotency.rs).
CREATE TABLE idempotency_keys (
    caller TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request TEXT NOT NULL,
    status BIGINT,
    body TEXT,
    -- 1: answered, but the answer is not kept (it held secrets shown once, or was too large).
    withheld BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (caller, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
