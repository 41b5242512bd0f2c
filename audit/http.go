package audit

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
)

// API serves the audit routes over an event store.
type API struct {
	store eventstore.Store
}

// NewAPI returns the audit routes over store.
func NewAPI(store eventstore.Store) *API { return &API{store: store} }

// Register mounts the audit routes on r.
func (a *API) Register(r *mux.Router) {
	r.HandleFunc("/v1/audit/verify", a.verify).Methods(http.MethodGet)
}

// verify answers GET /v1/audit/verify[?stream=S] with the Report: 200 whether or not the
// chains hold, since the verification itself succeeded; ok and first_failure say the verdict.
// A stream that holds no event is a 404: a verdict of ok over nothing would read as a pass.
func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	q, err := httpx.Query(r.URL.RawQuery, "stream")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	stream, one := q["stream"]
	if one {
		if err := eventstore.ValidateStreamName(stream); err != nil {
			httpx.WriteError(w, r, httpx.BadRequest("query parameter stream: %v", err))
			return
		}
	}
	report, err := Verify(r.Context(), a.store, Options{Stream: stream})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if one && report.Events == 0 && report.FirstFailure == nil {
		httpx.WriteError(w, r, httpx.Errorf(http.StatusNotFound, "stream_not_found", "stream %s holds no event", httpx.Clip(stream)))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, report)
}
