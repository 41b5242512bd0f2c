// Package access decides who may do what on the HTTP API: it turns the Authorization header of
// a request into a Principal (a name and one of six roles), and lets the request through only
// when the principal's role is among the roles its route declares.
//
// Data flows one way: tokens are granted and revoked as events in the log (stream
// domain.TokenRegistryStream, written by Tokens.Create and Tokens.Revoke); every server's
// Tokens follows that stream (Tokens.Follow) and keeps the SHA-256 of each live secret in
// memory; the Guard wraps the router, matches the request's route, authenticates the bearer
// token and checks the route's roles before the handler runs, then hands the handler the
// principal in the request's context (PrincipalFrom).
//
// Other packages use it thus:
//
//   - a handler learns who calls it with PrincipalFrom(r.Context()), and whether that caller
//     may see personal data with Principal.SeesPersonalData;
//   - a page that takes a token by other means than the Authorization header (the dashboard's
//     login form) checks it with Authenticator.Authenticate(ctx, secret), which answers the
//     Principal or ErrUnauthenticated, and stores nothing but its own session;
//   - a new route declares its roles as "x-roles" in internal/openapi/openapi.json (or
//     "security": [] for the two probes that need none); a route without them is refused to
//     everyone, and a test walks the router to fail on it.
package access
