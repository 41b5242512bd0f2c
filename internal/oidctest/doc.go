// Package oidctest runs an OpenID Connect issuer on loopback for tests, as a company's identity
// provider would be: its discovery document, its JWKS, and the key it signs ID tokens with.
// The access package's tests and the end-to-end tests of serve --oidc-issuer share it.
package oidctest
