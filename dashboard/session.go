package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/orderledger/orderledger/access"
)

// Cookie names. The session cookie is HttpOnly and SameSite=Strict: no script reads it and no
// other site's page can send it.
const (
	sessionCookie = "orderledger_session"
	loginCookie   = "orderledger_login" // the login form's CSRF token, before there is a session
)

// SessionLifetime is how long a session lasts after its login.
const SessionLifetime = 8 * time.Hour

// maxSessions bounds the sessions kept in memory; the oldest goes first.
const maxSessions = 10000

// Sessions are the dashboard's logins, kept in this process's memory: a session names the token
// it was opened with, which is authenticated again on every request, so that revoking the token
// ends the session on the next request. A restarted process forgets its sessions (people log
// in again); processes behind one load balancer each keep their own.
type Sessions struct {
	auth access.Authenticator
	now  func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	order    []string // ids, oldest first
}

type session struct {
	token   string
	csrf    string
	expires time.Time
}

// NewSessions keeps sessions whose tokens auth authenticates.
func NewSessions(auth access.Authenticator, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{auth: auth, now: now, sessions: map[string]*session{}}
}

// randomToken is 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// open authenticates token and opens a session for it: its id and CSRF token.
func (s *Sessions) open(ctx context.Context, token string) (id string, p access.Principal, err error) {
	p, err = s.auth.Authenticate(ctx, token)
	if err != nil {
		return "", access.Principal{}, err
	}
	id = randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) >= maxSessions {
		delete(s.sessions, s.order[0])
		s.order = s.order[1:]
	}
	s.sessions[id] = &session{token: token, csrf: randomToken(), expires: s.now().Add(SessionLifetime)}
	s.order = append(s.order, id)
	return id, p, nil
}

// lookup returns the live session of r's cookie.
func (s *Sessions) lookup(r *http.Request) (string, *session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[c.Value]
	if !ok {
		return "", nil, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.sessions, c.Value)
		return "", nil, false
	}
	return c.Value, sess, true
}

// close ends the session id.
func (s *Sessions) close(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
}

// SessionPrincipal implements access.SessionAuthenticator: the principal of r's session, whose
// token must still be live.
func (s *Sessions) SessionPrincipal(r *http.Request) (access.Principal, bool) {
	id, sess, ok := s.lookup(r)
	if !ok {
		return access.Principal{}, false
	}
	p, err := s.auth.Authenticate(r.Context(), sess.token)
	if err != nil {
		if errors.Is(err, access.ErrUnauthenticated) {
			s.close(id) // revoked: the session ends with its token
		}
		return access.Principal{}, false
	}
	return p, true
}

// csrf is the CSRF token of r's session, "" without one.
func (s *Sessions) csrf(r *http.Request) string {
	if _, sess, ok := s.lookup(r); ok {
		return sess.csrf
	}
	return ""
}

// sameToken compares two tokens in constant time; empty never matches.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}
