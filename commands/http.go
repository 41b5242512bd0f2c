package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/access"
	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/httpx"
)

// API serves the write routes of the HTTP API (docs/api.md, internal/openapi/openapi.json).
type API struct {
	h         *Handler
	admission *admission // nil: every order is taken
}

// NewAPI returns the write API on h.
func NewAPI(h *Handler) *API { return &API{h: h} }

// Register mounts every write route on r.
func (a *API) Register(r *mux.Router) {
	r.HandleFunc("/v1/customers", a.registerCustomer).Methods(http.MethodPost)
	r.HandleFunc("/v1/customers/{id}", a.changeCustomer).Methods(http.MethodPut)
	r.HandleFunc("/v1/customers/{id}/personal-data", a.eraseCustomer).Methods(http.MethodDelete)
	r.HandleFunc("/v1/inventory/{sku}/receipts", a.receiveStock).Methods(http.MethodPost)
	r.HandleFunc("/v1/inventory/{sku}/adjustments", a.adjustStock).Methods(http.MethodPost)
	r.HandleFunc("/v1/inventory/{sku}/replenishment", a.setReplenishment).Methods(http.MethodPut)
	r.HandleFunc("/v1/orders", a.placeOrder).Methods(http.MethodPost)
	r.HandleFunc("/v1/orders/{id}/payments", a.recordPayment).Methods(http.MethodPost)
	r.HandleFunc("/v1/orders/{id}/shipments", a.shipOrder).Methods(http.MethodPost)
	r.HandleFunc("/v1/orders/{id}/deliveries", a.deliverOrder).Methods(http.MethodPost)
	r.HandleFunc("/v1/orders/{id}/cancellation", a.cancelOrder).Methods(http.MethodPost)
	r.HandleFunc("/v1/orders/{id}/returns", a.returnItems).Methods(http.MethodPost)
	r.HandleFunc("/v1/orders/{id}/refunds", a.issueRefund).Methods(http.MethodPost)
	r.HandleFunc("/v1/purchase-orders/{id}/receipt", a.receivePurchaseOrder).Methods(http.MethodPost)
}

// answer is what a write route sends back: status and body.
type answer struct {
	status int
	body   any
}

// positionAnswer is the 200 {position} most routes give.
func positionAnswer(res Result) answer {
	return answer{http.StatusOK, map[string]string{"position": res.Position.String()}}
}

// emptyBody is the request of routes whose body is `{}`; an empty body is accepted too.
type emptyBody struct{}

// write runs one write request: it decodes the body strictly into req (a pointer), checks the
// Idempotency-Key, and runs exec with the command's metadata.
func (a *API) write(w http.ResponseWriter, r *http.Request, req any, exec func(ctx context.Context, meta Meta) (answer, error)) {
	body, err := httpx.ReadBody(w, r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if _, ok := req.(*emptyBody); ok && len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := httpx.DecodeStrict(body, req); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	meta, key, err := requestMeta(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if key == "" {
		ans, err := exec(r.Context(), meta)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteJSON(w, ans.status, ans.body)
		return
	}
	status, stored, replayed, err := a.idempotent(r, key, requestHash(r, req), meta, exec)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	contentType := "application/json"
	if status >= 400 {
		contentType = "application/problem+json"
	}
	w.Header().Set("Content-Type", contentType)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(stored, '\n'))
}

// idempotencyNamespace roots the command IDs derived from idempotency keys.
var idempotencyNamespace = uuid.MustParse("6d1f3a52-8f0e-4d53-9a57-2b8f1c0e7a11")

// requestMeta reads the headers that identify a request, Idempotency-Key and
// X-Correlation-ID, and takes its actor from the principal the access guard authenticated:
// no header can set who acted.
func requestMeta(r *http.Request) (Meta, string, error) {
	key := r.Header.Get("Idempotency-Key")
	if len(r.Header.Values("Idempotency-Key")) > 1 {
		return Meta{}, "", httpx.BadRequest("header Idempotency-Key is given more than once")
	}
	if key != "" && !printableASCII(key, 255) {
		return Meta{}, "", httpx.BadRequest("header Idempotency-Key must be 1..255 printable ASCII characters")
	}
	correlation := r.Header.Get("X-Correlation-ID")
	if correlation != "" && !printableASCII(correlation, 128) {
		return Meta{}, "", httpx.BadRequest("header X-Correlation-ID must be 1..128 printable ASCII characters")
	}
	meta := Meta{CommandID: uuid.New(), CorrelationID: correlation, Actor: access.ActorOf(r.Context()), IdempotencyKey: key}
	if key != "" {
		meta.CommandID = uuid.NewSHA1(idempotencyNamespace, []byte(key))
	}
	return meta, key, nil
}

func printableASCII(s string, limit int) bool {
	if s == "" || len(s) > limit {
		return false
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// requestHash identifies a request for idempotency: method, path and the decoded body
// re-encoded, so whitespace and field order do not make two equal requests differ.
func requestHash(r *http.Request, req any) string {
	canonical, _ := json.Marshal(req)
	sum := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "\n" + string(canonical)))
	return hex.EncodeToString(sum[:])
}

// idempotencyStream is where the answer to a key is kept; the key is hashed because clients
// choose it freely.
func idempotencyStream(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "idempotency-" + hex.EncodeToString(sum[:20])
}

type idempotencyRecord struct {
	found bool
	rec   domain.IdempotentRequestRecorded
}

func foldIdempotency(s idempotencyRecord, e domain.Event) idempotencyRecord {
	if rec, ok := e.(domain.IdempotentRequestRecorded); ok && !s.found {
		return idempotencyRecord{found: true, rec: rec}
	}
	return s
}

// errKeyReused is a 422: the same key came with another request.
var errKeyReused = httpx.Errorf(http.StatusUnprocessableEntity, "idempotency_key_reused",
	"this Idempotency-Key was used with a different request; use a new key for a new request")

// idempotent answers a request made with an Idempotency-Key: a repeat of a recorded request
// gets the recorded answer, a different request under the same key a 422, a new one is
// executed and its answer recorded. The command's event IDs derive from the key, so a repeat
// that arrives after a crash between the command and the record appends nothing twice.
func (a *API) idempotent(r *http.Request, key, hash string, meta Meta, exec func(context.Context, Meta) (answer, error)) (status int, body []byte, replayed bool, err error) {
	ctx := r.Context()
	stream := idempotencyStream(key)
	var prior idempotencyRecord
	if err := Read(ctx, a.h, stream, foldIdempotency, func(s idempotencyRecord, _ bool) error { prior = s; return nil }); err != nil {
		return 0, nil, false, err
	}
	if prior.found {
		if prior.rec.RequestHash != hash {
			return 0, nil, false, errKeyReused
		}
		return prior.rec.Status, prior.rec.Body, true, nil
	}
	ans, err := exec(ctx, meta)
	switch {
	case err == nil:
		if body, err = json.Marshal(ans.body); err != nil {
			return 0, nil, false, err
		}
	case isRecordable(err):
		// A refusal by a business rule is an answer too: the same request gets it again.
		status, code := httpx.Classify(err)
		ans.status = status
		body, _ = json.Marshal(httpx.Problem{
			Type: httpx.ProblemTypeBase + code, Title: http.StatusText(status), Status: status,
			Detail: err.Error(), Code: code, Instance: r.URL.Path,
		})
	default:
		return 0, nil, false, err
	}
	record := domain.IdempotentRequestRecorded{Key: key, RequestHash: hash, Status: ans.status, Body: body, RecordedAt: a.h.Now()}
	recordMeta := meta
	recordMeta.CommandID = DeriveID(meta.CommandID, "idempotency-record")
	_, err = Execute(ctx, a.h, stream, foldIdempotency, func(s idempotencyRecord) ([]domain.Event, error) {
		if s.found {
			return nil, nil
		}
		return []domain.Event{record}, nil
	}, recordMeta)
	if err != nil {
		return 0, nil, false, err
	}
	// A concurrent request with the same key may have recorded first: answer what is stored.
	var stored idempotencyRecord
	if err := Read(ctx, a.h, stream, foldIdempotency, func(s idempotencyRecord, _ bool) error { stored = s; return nil }); err != nil {
		return 0, nil, false, err
	}
	if stored.found && stored.rec.RequestHash != hash {
		return 0, nil, false, errKeyReused
	}
	if stored.found {
		return stored.rec.Status, stored.rec.Body, !ownRecord(stored, record), nil
	}
	return ans.status, body, false, nil
}

// ownRecord reports whether the stored record is the one this request just wrote.
func ownRecord(stored idempotencyRecord, written domain.IdempotentRequestRecorded) bool {
	return stored.rec.RecordedAt.Equal(written.RecordedAt) && string(stored.rec.Body) == string(written.Body)
}

// isRecordable reports whether a failed request's answer is final (a 409 from a business
// rule); malformed input never reaches here and transient failures must be retryable.
func isRecordable(err error) bool {
	kind, _, ok := domain.KindOf(err)
	return ok && kind == domain.KindConflict
}

// pathID reads and checks an identifier from the path.
func pathID(r *http.Request, name string) (string, error) {
	id := mux.Vars(r)[name]
	// A path addresses something that may exist, perhaps made by an older version under the
	// old rule; what it creates (a SKU's first receipt) the domain checks as a new identifier.
	if !domain.ValidReference(id) {
		return "", httpx.BadRequest("%s in the path must match ^[A-Za-z0-9._-]{1,64}$", name)
	}
	return id, nil
}

// required reports a missing field by name.
func required(field string) error {
	return httpx.BadRequest("field %s is required", field)
}

// newID returns the client's ID, or one derived from the command when the body had none.
func newID(given *string, field string, meta Meta) (string, error) {
	if given == nil {
		return DeriveID(meta.CommandID, field).String(), nil
	}
	if !domain.ValidID(*given) {
		return "", httpx.BadRequest("field %s must match %s (a letter or digit first)", field, domain.IDPattern)
	}
	return *given, nil
}
