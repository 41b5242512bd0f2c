package access

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/internal/httpx"
)

// ErrUnauthenticated: no credential, or one no authenticator knows (unknown, revoked, expired).
var ErrUnauthenticated = httpx.Errorf(http.StatusUnauthorized, "unauthenticated",
	`this route needs a token: send "Authorization: Bearer <token>" (orderledger tokens create makes one)`)

// ErrForbidden: the principal's role may not use this route.
var ErrForbidden = errors.New("forbidden")

// Authenticator turns a credential (the bearer token of a request, or a token typed into a
// login form) into a Principal, or answers ErrUnauthenticated.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (Principal, error)
}

// Authenticators tries each authenticator in turn; the first that knows the credential wins.
type Authenticators []Authenticator

// Authenticate implements Authenticator.
func (as Authenticators) Authenticate(ctx context.Context, credential string) (Principal, error) {
	for _, a := range as {
		p, err := a.Authenticate(ctx, credential)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, ErrUnauthenticated) {
			return Principal{}, err
		}
	}
	return Principal{}, ErrUnauthenticated
}

// Route names an operation of the API and what it needs: Public (no credential at all) or one
// of Roles.
type Route struct {
	Method string // GET, POST, …
	Path   string // a template, /v1/orders/{id}
	Public bool
	Roles  []Role
	// Consumes are the media types a POST, PUT or PATCH of the route may send; none means
	// application/json. Anything else is a 415: a browser cannot send application/json across
	// sites without asking (a CORS preflight), so no page elsewhere can forge a write.
	Consumes []string
}

// Policy is what every route needs, keyed by method and path template.
type Policy struct {
	routes map[string]Route
}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

func routeKey(method, template string) string {
	return method + " " + pathParam.ReplaceAllString(template, "{}")
}

// NewPolicy returns the policy of routes. A route's parameter names do not matter: /v1/x/{id}
// and /v1/x/{id:[0-9]+} are the same route.
func NewPolicy(routes []Route) *Policy {
	p := &Policy{routes: make(map[string]Route, len(routes))}
	for _, r := range routes {
		p.routes[routeKey(r.Method, r.Path)] = r
	}
	return p
}

// Lookup returns what the route method template needs; a HEAD needs what its GET needs.
func (p *Policy) Lookup(method, template string) (Route, bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	r, ok := p.routes[routeKey(method, template)]
	return r, ok
}

// Allows reports whether role may use the route method template. A route the policy does
// not know admits no one.
func (p *Policy) Allows(method, template string, role Role) bool {
	r, ok := p.Lookup(method, template)
	return ok && slices.Contains(r.Roles, role)
}

// Guard wraps a router: every request is authenticated and authorized before the router runs
// its handler.
type Guard struct {
	router *mux.Router  // matches the request's route
	next   http.Handler // serves it: the router, or what wraps it
	policy *Policy
	auth   Authenticator
	// open reports whether open mode holds now: every request is OpenPrincipal.
	open func() bool
	// sessions, when set, authenticates a GET or HEAD that carries no Authorization header
	// by its session (the dashboard's cookie); isPage names the routes whose callers are
	// people, sent to loginPath (303) rather than answered 401.
	sessions  SessionAuthenticator
	isPage    func(template string) bool
	loginPath string
}

// SessionAuthenticator resolves a request's session, such as the dashboard's cookie, to the
// principal that opened it.
type SessionAuthenticator interface {
	SessionPrincipal(r *http.Request) (Principal, bool)
}

// WithSessions returns the guard also admitting sessions: a GET or HEAD without an
// Authorization header is the principal of its session. Only reads: a session never
// authorizes a write, so a page of another site cannot make a browser write with it. A
// request for a page (isPage of its route template) without a credential is answered 303 to
// loginPath.
func (g *Guard) WithSessions(sessions SessionAuthenticator, isPage func(template string) bool, loginPath string) *Guard {
	c := *g
	c.sessions, c.isPage, c.loginPath = sessions, isPage, loginPath
	return &c
}

// NewGuard guards router with policy, authenticating credentials with auth; while open
// returns true, no credential is needed.
func NewGuard(router *mux.Router, policy *Policy, auth Authenticator, open func() bool) *Guard {
	return &Guard{router: router, next: router, policy: policy, auth: auth, open: open}
}

// Wrap returns the guard in front of next, which serves what the guard lets through (next
// routes with the guard's router, or wraps it).
func (g *Guard) Wrap(next http.Handler) http.Handler {
	c := *g
	c.next = next
	return &c
}

// ServeHTTP answers 401 without a known credential and 403 when the role may not use the
// route, in problem+json; otherwise the router serves the request with the principal in its
// context. A request for no route still needs a credential, so that the shape of the API is
// not shown to strangers.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var match mux.RouteMatch
	var route Route
	known := false
	template := ""
	if g.router.Match(r, &match) && match.Route != nil && match.MatchErr == nil {
		var err error
		if template, err = match.Route.GetPathTemplate(); err == nil {
			route, known = g.policy.Lookup(r.Method, template)
			if !known {
				// A served route that declares nothing is refused to everyone, open mode too.
				httpx.WriteProblem(w, r, http.StatusForbidden, "forbidden", "this route declares no roles, so no one may use it")
				return
			}
		}
	}
	if known && route.Public {
		g.next.ServeHTTP(w, r)
		return
	}
	principal, err := g.principal(r)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) && g.isPage != nil && known && g.isPage(template) && r.Header.Get("Authorization") == "" {
			http.Redirect(w, r, g.loginPath, http.StatusSeeOther)
			return
		}
		if errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrMalformedAuthorization) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			detail := ErrUnauthenticated.Detail
			if errors.Is(err, ErrMalformedAuthorization) {
				detail = ErrMalformedAuthorization.Error()
			}
			httpx.WriteProblem(w, r, http.StatusUnauthorized, "unauthenticated", detail)
			return
		}
		httpx.WriteError(w, r, err)
		return
	}
	if known && !slices.Contains(route.Roles, principal.Role) {
		httpx.WriteProblem(w, r, http.StatusForbidden, "forbidden",
			"the role "+string(principal.Role)+" may not "+r.Method+" this route")
		return
	}
	if known {
		if err := checkMediaType(r, route.Consumes); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	g.next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), principal)))
}

// checkMediaType answers 415 for a POST, PUT or PATCH whose Content-Type is none of consumes
// (application/json when consumes is empty), with or without parameters such as charset.
func checkMediaType(r *http.Request, consumes []string) error {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return nil
	}
	if len(consumes) == 0 {
		consumes = []string{"application/json"}
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && slices.Contains(consumes, strings.ToLower(mediaType)) {
		return nil
	}
	return httpx.Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
		"a %s here must be sent with Content-Type: %s", r.Method, strings.Join(consumes, " or "))
}

func (g *Guard) principal(r *http.Request) (Principal, error) {
	if g.open() {
		return OpenPrincipal, nil
	}
	if len(r.Header.Values("Authorization")) > 1 {
		return Principal{}, ErrMalformedAuthorization
	}
	credential, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return Principal{}, err
	}
	if credential == "" {
		if g.sessions != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if p, ok := g.sessions.SessionPrincipal(r); ok {
				return p, nil
			}
		}
		return Principal{}, ErrUnauthenticated
	}
	return g.auth.Authenticate(r.Context(), credential)
}
