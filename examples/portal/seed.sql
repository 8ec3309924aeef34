-- Run at every start: idempotent (ON CONFLICT DO NOTHING works on SQLite
-- and PostgreSQL alike).
INSERT INTO notices (id, title, body, created_at) VALUES
  ('n-welcome', 'Welcome to the support portal', 'Sign in with any name to open tickets. Replies show up live.', 1767225600000),
  ('n-maintenance', 'Maintenance window', 'Saturday 02:00-03:00 UTC: the portal stays up, uploads may pause.', 1767312000000),
  ('n-status', 'All systems operational', 'Everything runs on one machine: Stratus.', 1767398400000)
ON CONFLICT (id) DO NOTHING;

INSERT INTO tickets (id, title, body, status, author, created_at) VALUES
  ('t-seed-1', 'Cannot reset my password', 'The reset mail never arrives.', 'open', 'ada', 1767225600000),
  ('t-seed-2', 'Invoice shows the wrong VAT', 'The March invoice has 19% instead of 21%.', 'open', 'grace', 1767229200000),
  ('t-seed-3', 'Feature request: dark mode', 'Please add a dark theme to the portal.', 'closed', 'linus', 1767232800000)
ON CONFLICT (id) DO NOTHING;

INSERT INTO replies (id, ticket_id, body, author, created_at) VALUES
  ('r-seed-1', 't-seed-1', 'Could you check your spam folder?', 'support', 1767229200000)
ON CONFLICT (id) DO NOTHING;
