package integrations

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/follow"
	"github.com/orderledger/orderledger/internal/httpx"
)

// maxURLLength bounds a webhook's URL.
const maxURLLength = 2048

// webhookNamespace roots the webhook and event IDs derived from an Idempotency-Key, so a retry
// names the webhook the first attempt created.
var webhookNamespace = uuid.MustParse("0c8f3b9e-5a41-4f7e-9d2b-6e1f4a7c3d58")

// Webhooks is the webhooks' registry: their definitions, appended to the log, and their
// delivery state, kept beside the follow checkpoints.
type Webhooks struct {
	events eventstore.Store
	store  *webhookStore
	now    func() time.Time
}

// OpenWebhooks opens the webhooks' tables in the database of leases (creating them if
// missing); isPostgres says which SQL it speaks.
func OpenWebhooks(ctx context.Context, events eventstore.Store, leases *follow.Store, isPostgres bool) (*Webhooks, error) {
	s, err := openWebhookStore(ctx, leases, isPostgres)
	if err != nil {
		return nil, err
	}
	return &Webhooks{events: events, store: s, now: time.Now}, nil
}

// RegisterReads mounts GET /v1/webhooks and GET /v1/webhooks/{id}.
func (w *Webhooks) RegisterReads(r *mux.Router) {
	r.HandleFunc("/v1/webhooks", w.list).Methods(http.MethodGet)
	r.HandleFunc("/v1/webhooks/{id}", w.get).Methods(http.MethodGet)
}

// RegisterWrites mounts POST /v1/webhooks, DELETE /v1/webhooks/{id} and
// POST /v1/webhooks/{id}/resume.
func (w *Webhooks) RegisterWrites(r *mux.Router) {
	r.HandleFunc("/v1/webhooks", w.create).Methods(http.MethodPost)
	r.HandleFunc("/v1/webhooks/{id}", w.remove).Methods(http.MethodDelete)
	r.HandleFunc("/v1/webhooks/{id}/resume", w.resume).Methods(http.MethodPost)
}

// createRequest is the body of POST /v1/webhooks.
type createRequest struct {
	URL   string   `json:"url"`
	Types []string `json:"types"`
}

// created answers POST /v1/webhooks: the only answer that shows the secret.
type created struct {
	WebhookID string   `json:"webhook_id"`
	URL       string   `json:"url"`
	Types     []string `json:"types"`
	Secret    string   `json:"secret"`
	Position  string   `json:"position"`
}

func (req *createRequest) validate() error {
	if req.URL == "" {
		return httpx.BadRequest("field url is required: the http or https URL to POST the events to")
	}
	if len(req.URL) > maxURLLength {
		return httpx.BadRequest("field url is over %d bytes", maxURLLength)
	}
	u, err := url.Parse(req.URL)
	if err != nil || strings.IndexFunc(req.URL, unicode.IsSpace) >= 0 {
		return httpx.BadRequest("field url is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return httpx.BadRequest("field url must be an http or https URL, not %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return httpx.BadRequest("field url names no host")
	}
	if u.Fragment != "" {
		return httpx.BadRequest("field url must not have a fragment")
	}
	if req.Types != nil {
		if len(req.Types) == 0 {
			return httpx.BadRequest("field types is empty; leave it out to receive every event")
		}
		seen := map[string]bool{}
		for i, t := range req.Types {
			if !domain.KnownEventType(t) {
				return httpx.BadRequest("field types[%d]: unknown event type %q", i, t)
			}
			if seen[t] {
				return httpx.BadRequest("field types[%d]: %q is listed twice", i, t)
			}
			seen[t] = true
		}
	}
	return nil
}

// requestMeta reads the headers every write takes, as the order routes read them:
// X-Correlation-ID and Idempotency-Key; the actor is the principal the access guard
// authenticated, which no header can change.
func requestMeta(r *http.Request) (eventstore.Metadata, error) {
	meta := eventstore.Metadata{Actor: access.ActorOf(r.Context())}
	for _, h := range []struct {
		name  string
		limit int
		into  *string
	}{{"X-Correlation-ID", 128, &meta.CorrelationID}, {"Idempotency-Key", 255, &meta.IdempotencyKey}} {
		values := r.Header.Values(h.name)
		if len(values) == 0 {
			continue
		}
		v := values[0]
		if len(values) > 1 || v == "" || len(v) > h.limit ||
			strings.IndexFunc(v, func(c rune) bool { return c > unicode.MaxASCII || !unicode.IsPrint(c) }) >= 0 {
			return meta, httpx.BadRequest("header %s must be given once, 1..%d printable ASCII characters", h.name, h.limit)
		}
		*h.into = v
	}
	return meta, nil
}

func (w *Webhooks) create(rw http.ResponseWriter, r *http.Request) {
	if err := w.createWebhook(rw, r); err != nil {
		httpx.WriteError(rw, r, err)
	}
}

func (w *Webhooks) createWebhook(rw http.ResponseWriter, r *http.Request) error {
	meta, err := requestMeta(r)
	if err != nil {
		return err
	}
	key := meta.IdempotencyKey
	body, err := httpx.ReadBody(rw, r)
	if err != nil {
		return err
	}
	var req createRequest
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	id, eventID := uuid.New(), uuid.New()
	if key != "" {
		// A retry under the same key names the same webhook and appends nothing twice; its
		// secret, derived from the id, is the same too.
		id = uuid.NewSHA1(webhookNamespace, []byte("webhook\x00"+key))
		eventID = uuid.NewSHA1(webhookNamespace, []byte("registered\x00"+key))
	}
	e := domain.WebhookRegistered{WebhookID: id.String(), URL: req.URL, Types: req.Types, RegisteredAt: w.now().UTC()}
	typ, data, err := domain.EncodeEvent(e)
	if err != nil {
		return err
	}
	stream := domain.WebhookStream(e.WebhookID)
	res, err := w.events.Append(r.Context(), stream, eventstore.NoStream(),
		eventstore.EventData{ID: eventID, Type: typ, Data: data, Metadata: meta})
	if errors.Is(err, eventstore.ErrWrongExpectedRevision) && key != "" {
		return httpx.Errorf(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"Idempotency-Key %q was used for another request; use a new key", key)
	}
	if err != nil {
		return err
	}
	if res.Retried {
		stored, err := w.events.ReadStream(r.Context(), stream, 0, 1)
		if err != nil {
			return err
		}
		var first domain.WebhookRegistered
		if len(stored) == 1 {
			if de, err := domain.DecodeEvent(stored[0].Type, stored[0].Data); err == nil {
				first, _ = de.(domain.WebhookRegistered)
			}
		}
		if first.URL != e.URL || !slices.Equal(first.Types, e.Types) {
			return httpx.Errorf(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"Idempotency-Key %q was used for another request; use a new key", key)
		}
		e = first
	}
	if err := w.store.register(r.Context(), e, res.Position); err != nil {
		return err
	}
	types := e.Types
	if types == nil {
		types = []string{}
	}
	httpx.WriteJSON(rw, http.StatusCreated, created{
		WebhookID: e.WebhookID, URL: e.URL, Types: types, Secret: w.store.secret(e.WebhookID), Position: res.Position.String(),
	})
	return nil
}

// errWebhookNotFound answers a webhook id that names no webhook (or a deleted one).
func errWebhookNotFound(id string) error {
	return httpx.Errorf(http.StatusNotFound, "webhook_not_found", "webhook %s not found", id)
}

func (w *Webhooks) list(rw http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		httpx.WriteError(rw, r, httpx.BadRequest("this route takes no parameters"))
		return
	}
	hooks, err := w.store.list(r.Context())
	if err != nil {
		httpx.WriteError(rw, r, err)
		return
	}
	httpx.WriteJSON(rw, http.StatusOK, map[string][]Webhook{"items": hooks})
}

func (w *Webhooks) get(rw http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	hook, err := w.store.get(r.Context(), id)
	if errors.Is(err, sql.ErrNoRows) {
		err = errWebhookNotFound(id)
	}
	if err != nil {
		httpx.WriteError(rw, r, err)
		return
	}
	httpx.WriteJSON(rw, http.StatusOK, hook)
}

// change appends event to webhook id's stream if the webhook exists and is not deleted, then
// records it with mark.
func (w *Webhooks) change(rw http.ResponseWriter, r *http.Request, event func(id string, at time.Time) domain.Event, mark func(context.Context, string) error) {
	id := mux.Vars(r)["id"]
	err := func() error {
		meta, err := requestMeta(r)
		if err != nil {
			return err
		}
		if _, err := uuid.Parse(id); err != nil {
			return errWebhookNotFound(id)
		}
		stream := domain.WebhookStream(id)
		eventID := uuid.New()
		if meta.IdempotencyKey != "" {
			eventID = uuid.NewSHA1(webhookNamespace, []byte(r.Method+" "+r.URL.Path+"\x00"+meta.IdempotencyKey))
		}
		for attempt := 0; ; attempt++ {
			history, err := w.events.ReadStream(r.Context(), stream, 0, 1000)
			if err != nil {
				return err
			}
			// A retry under an Idempotency-Key finds the change it made and answers it again.
			for _, ev := range history {
				if ev.ID == eventID {
					httpx.WriteJSON(rw, http.StatusOK, map[string]string{"webhook_id": id, "position": ev.Position.String()})
					return nil
				}
			}
			if len(history) == 0 || history[len(history)-1].Type == (domain.WebhookDeleted{}).EventType() {
				return errWebhookNotFound(id)
			}
			typ, data, err := domain.EncodeEvent(event(id, w.now().UTC()))
			if err != nil {
				return err
			}
			last := history[len(history)-1].Version
			res, err := w.events.Append(r.Context(), stream, eventstore.Exact(last),
				eventstore.EventData{ID: eventID, Type: typ, Data: data, Metadata: meta})
			if errors.Is(err, eventstore.ErrWrongExpectedRevision) && attempt < 3 {
				continue // another change came first: decide again on it
			}
			if err != nil {
				return err
			}
			if err := mark(r.Context(), id); err != nil {
				return err
			}
			httpx.WriteJSON(rw, http.StatusOK, map[string]string{"webhook_id": id, "position": res.Position.String()})
			return nil
		}
	}()
	if err != nil {
		httpx.WriteError(rw, r, err)
	}
}

func (w *Webhooks) remove(rw http.ResponseWriter, r *http.Request) {
	w.change(rw, r, func(id string, at time.Time) domain.Event {
		return domain.WebhookDeleted{WebhookID: id, DeletedAt: at}
	}, w.store.markDeleted)
}

func (w *Webhooks) resume(rw http.ResponseWriter, r *http.Request) {
	w.change(rw, r, func(id string, at time.Time) domain.Event {
		return domain.WebhookResumed{WebhookID: id, ResumedAt: at}
	}, w.store.markResumed)
}
