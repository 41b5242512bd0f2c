package access

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Role is what a principal may do; the routes name the roles they admit.
type Role string

// The six roles.
const (
	Admin      Role = "admin"      // everything, tokens, webhooks, erasure
	Clerk      Role = "clerk"      // customers, orders, payments
	Warehouse  Role = "warehouse"  // inventory, purchase orders, shipments, deliveries, returns
	Accountant Role = "accountant" // payments, refunds; reads orders, customers, sales, the books
	Auditor    Role = "auditor"    // every read, no writes
	Viewer     Role = "viewer"     // reads without personal data
)

// Roles lists every role, most powerful first.
var Roles = []Role{Admin, Clerk, Warehouse, Accountant, Auditor, Viewer}

// ParseRole returns the role named s, or an error listing the roles.
func ParseRole(s string) (Role, error) {
	if slices.Contains(Roles, Role(s)) {
		return Role(s), nil
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("unknown role %q; want one of %s", s, strings.Join(names, ", "))
}

// Principal is who makes a request: the name of their token (or of their OpenID Connect
// identity), which every event they cause records as its actor, and their role.
type Principal struct {
	Name string
	Role Role
}

// SeesPersonalData reports whether the principal may see customers' names, emails, phones and
// shipping addresses; a viewer gets them as null.
func (p Principal) SeesPersonalData() bool { return p.Role != Viewer }

// SeesPersonalData reports whether the caller of r may see personal data: a request that no
// Guard authenticated may not.
func SeesPersonalData(r *http.Request) bool {
	p, ok := PrincipalFrom(r.Context())
	return ok && p.SeesPersonalData()
}

// OpenPrincipal is who every request is in open mode (loopback, no token ever created).
var OpenPrincipal = Principal{Name: "anonymous", Role: Admin}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// ActorOf is who acts in ctx, as the events it causes record it: the principal's name, or
// the open mode's when no guard ran.
func ActorOf(ctx context.Context) string {
	if p, ok := PrincipalFrom(ctx); ok {
		return p.Name
	}
	return OpenPrincipal.Name
}

// PrincipalFrom returns the principal the Guard put in ctx, and false when no Guard ran.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
