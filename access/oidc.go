package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDC accepts bearer JWTs an OpenID Connect issuer signed (a company's identity provider):
// the signature against the issuer's published keys, the issuer, the audience and the expiry
// are checked by go-oidc; the role comes from a claim, the name from preferred_username or
// sub.
type OIDC struct {
	verifier  *oidc.IDTokenVerifier
	roleClaim string
	log       *slog.Logger
}

// NewOIDC reads the issuer's discovery document (ISSUER/.well-known/openid-configuration)
// and returns an authenticator of the JWTs it issues for audience, with the role in the claim
// roleClaim. ctx bounds the discovery only.
func NewOIDC(ctx context.Context, issuer, audience, roleClaim string, log *slog.Logger) (*OIDC, error) {
	if issuer == "" || audience == "" || roleClaim == "" {
		return nil, errors.New("OpenID Connect needs an issuer, an audience and a role claim")
	}
	if log == nil {
		log = slog.Default()
	}
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("OpenID Connect issuer %s: %w", issuer, err)
	}
	// The keys are fetched when a token needs them, with that request's context.
	verifier := provider.VerifierContext(context.WithoutCancel(ctx), &oidc.Config{ClientID: audience})
	return &OIDC{verifier: verifier, roleClaim: roleClaim, log: log}, nil
}

// Authenticate implements Authenticator: a JWT that verifies, with a known role in the role
// claim and a name, is that principal; anything else is ErrUnauthenticated.
func (o *OIDC) Authenticate(ctx context.Context, credential string) (Principal, error) {
	if strings.Count(credential, ".") != 2 {
		return Principal{}, ErrUnauthenticated // not a JWT: one of our tokens, or nothing
	}
	token, err := o.verifier.Verify(ctx, credential)
	if err != nil {
		o.log.DebugContext(ctx, "OpenID Connect token refused", "err", err)
		return Principal{}, ErrUnauthenticated
	}
	var claims map[string]any
	if err := token.Claims(&claims); err != nil {
		return Principal{}, ErrUnauthenticated
	}
	name, _ := claims["preferred_username"].(string)
	if name == "" {
		name = token.Subject
	}
	role, ok := roleOf(claims[o.roleClaim])
	if !ok || name == "" {
		o.log.DebugContext(ctx, "OpenID Connect token without a known role or a name", "claim", o.roleClaim)
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Name: name, Role: role}, nil
}

// roleOf reads a role claim: a role's name, or a list of names of which the first known one
// counts (identity providers often send groups as a list).
func roleOf(claim any) (Role, bool) {
	switch v := claim.(type) {
	case string:
		r, err := ParseRole(v)
		return r, err == nil
	case []any:
		for _, item := range v {
			if s, ok := item.(string); ok {
				if r, err := ParseRole(s); err == nil {
					return r, true
				}
			}
		}
	}
	return "", false
}
