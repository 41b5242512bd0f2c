package access

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/internal/httpx"
)

// API serves the token routes: POST, GET /v1/tokens and DELETE /v1/tokens/{name}.
type API struct {
	tokens *Tokens
	now    func() time.Time
}

// NewAPI returns the token routes on tokens; now stamps the events.
func NewAPI(tokens *Tokens, now func() time.Time) *API { return &API{tokens: tokens, now: now} }

// RegisterWrites mounts the routes that create and revoke tokens.
func (a *API) RegisterWrites(r *mux.Router) {
	r.HandleFunc("/v1/tokens", a.create).Methods(http.MethodPost)
	r.HandleFunc("/v1/tokens/{name}", a.revoke).Methods(http.MethodDelete)
}

// RegisterReads mounts the route that lists tokens.
func (a *API) RegisterReads(r *mux.Router) {
	r.HandleFunc("/v1/tokens", a.list).Methods(http.MethodGet)
}

type createRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// createdToken answers POST /v1/tokens: the only answer that shows the secret.
type createdToken struct {
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	Token string `json:"token"`
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	body, err := httpx.ReadBody(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var req createRequest
	if err := httpx.DecodeStrict(body, &req); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if req.Name == "" || req.Role == "" {
		httpx.WriteError(w, r, httpx.BadRequest("fields name and role are required"))
		return
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		httpx.WriteError(w, r, httpx.BadRequest("field role: %v", err))
		return
	}
	secret, err := a.tokens.Create(r.Context(), req.Name, role, ActorOf(r.Context()), a.now())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, createdToken{Name: req.Name, Role: role, Token: secret})
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	if _, err := httpx.Query(r.URL.RawQuery); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := a.tokens.Refresh(r.Context()); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": a.tokens.List()})
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if err := a.tokens.Revoke(r.Context(), name, ActorOf(r.Context()), a.now()); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	for _, t := range a.tokens.List() {
		if t.Name == name {
			httpx.WriteJSON(w, http.StatusOK, t)
			return
		}
	}
	httpx.WriteError(w, r, ErrTokenNotFound)
}
