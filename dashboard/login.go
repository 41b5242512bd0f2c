package dashboard

import (
	"context"
	"errors"
	"net/http"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/internal/httpx"
)

// LoginPath is the login page, where the guard sends a browser without a session.
const LoginPath = "/ui/login"

// maxFormBytes bounds a login or logout form.
const maxFormBytes = 8 << 10

type loginData struct {
	CSRF    string
	Open    bool
	Problem string
}

func (loginData) title() string { return "Log in" }

// GET /ui/login: the form; it carries a fresh CSRF token, also set as a cookie.
func (d *Dashboard) loginForm(_ context.Context, r *http.Request) (string, any, error) {
	if _, err := parseQuery(r); err != nil {
		return "", nil, err
	}
	return "login", loginData{Open: d.open()}, nil
}

func (d *Dashboard) open() bool { return d.src.Open != nil && d.src.Open() }

// renderLogin answers the login page with status, a new CSRF token in its form and cookie.
func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, problem string) {
	data := loginData{CSRF: randomToken(), Open: d.open(), Problem: problem}
	setCookie(w, r, loginCookie, data.CSRF, 3600)
	d.write(w, r, status, view{Page: "login", Title: data.title(), Path: r.URL.RequestURI(), Data: data, Now: d.src.Now().UTC()})
}

// POST /ui/login with the form fields token and csrf: a session cookie and a 303 to /.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if d.open() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		d.renderLogin(w, r, http.StatusBadRequest, "the form could not be read; send it again")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), c.Value) {
		d.renderLogin(w, r, http.StatusBadRequest, "the form had expired; enter the token again")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		d.renderLogin(w, r, http.StatusBadRequest, "enter a token (orderledger tokens create makes one)")
		return
	}
	id, _, err := d.sessions.open(r.Context(), token)
	switch {
	case errors.Is(err, access.ErrUnauthenticated):
		d.renderLogin(w, r, http.StatusUnauthorized, "that token is unknown or revoked")
		return
	case err != nil:
		status, code := httpx.Classify(err)
		d.log.ErrorContext(r.Context(), "dashboard: login failed", "code", code, "err", err)
		d.renderLogin(w, r, status, "the server could not check the token ("+code+"); try again")
		return
	}
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, id, int(SessionLifetime.Seconds()))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// POST /ui/logout with the form field csrf: the session ends, 303 to the login page.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	id, sess, ok := d.sessions.lookup(r)
	if ok && !sameToken(r.PostForm.Get("csrf"), sess.csrf) {
		d.renderLogin(w, r, http.StatusForbidden, "logging out needs the form of a page of this session; nothing was changed")
		return
	}
	if ok {
		d.sessions.close(id)
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, LoginPath, http.StatusSeeOther)
}
