package commands

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/orderledger/orderledger/internal/httpx"
)

// admission turns new orders away while the automation is too far behind (see
// API.LimitOrdersByLag).
type admission struct {
	max time.Duration
	lag func() time.Duration
}

// LimitOrdersByLag makes POST /v1/orders answer 503 unavailable, with a Retry-After, while
// lag — the order-to-cash automation's — exceeds max. The trade-off: without a limit every
// order is accepted, and under a load the automation cannot follow, an order accepted now
// waits ever longer for its confirmation and invoice; with one, the server refuses orders
// (the client retries later) so that those it accepts are confirmed and invoiced within about
// max. It is off until called; the other routes are never limited.
func (a *API) LimitOrdersByLag(max time.Duration, lag func() time.Duration) {
	a.admission = &admission{max: max, lag: lag}
}

// admits answers 503 and reports false when the automation is behind its limit.
func (ad *admission) admits(w http.ResponseWriter, r *http.Request) bool {
	if ad == nil {
		return true
	}
	lag := ad.lag()
	if lag <= ad.max {
		return true
	}
	// The lag falls at up to a second a second once the load eases; a client that waits what
	// it exceeds the limit by is likely to be accepted.
	retry := max(int(math.Ceil((lag - ad.max).Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	httpx.WriteProblem(w, r, http.StatusServiceUnavailable, "unavailable",
		fmt.Sprintf("not taking new orders: the order-to-cash automation is %.1f s behind, over the limit of %s; retry after %d s", lag.Seconds(), ad.max, retry))
	return false
}
