package readapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/historygen"
	"github.com/orderledger/orderledger/projections"
	"github.com/orderledger/orderledger/projections/projectionstest"
	"github.com/orderledger/orderledger/readapi"
)

// TestCachedReadsIncludeAfter: while other clients keep reading the same customer and SKU
// (so their documents are cached, and read again as the projector changes them), a read with
// ?after= the position of a change always shows it.
func TestCachedReadsIncludeAfter(t *testing.T) {
	projectionstest.Backends(t, func(t *testing.T, env *projectionstest.Env) {
		s := newServer(t, env, readapi.DefaultAfterTimeout)
		before := s.getJSON(t, "/v1/inventory/SKU-A").(map[string]any)["on_hand"].(float64)
		s.getJSON(t, "/v1/customers/alice") // the readers below do not wait for the history

		stop := make(chan struct{})
		var readers sync.WaitGroup
		for i := range 4 {
			target := []string{"/v1/customers/alice", "/v1/inventory/SKU-A"}[i%2]
			readers.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if w := s.get(t, target); w.Code != http.StatusOK {
						t.Errorf("GET %s: %d %s", target, w.Code, w.Body)
						return
					}
				}
			})
		}
		defer func() {
			close(stop)
			readers.Wait()
		}()

		for i := 1; i <= 20; i++ {
			name := fmt.Sprintf("Alice %d", i)
			pos := projectionstest.Append(t, env.Store, []historygen.Record{{Stream: domain.CustomerStream("alice"),
				Event: domain.CustomerDetailsChanged{CustomerID: "alice", Name: &name, ChangedAt: projectionstest.Day(6, 9, i)}}})
			var c projections.Customer
			read(t, s, "/v1/customers/alice?after="+pos.String(), &c)
			if c.Name != name {
				t.Fatalf("alice after %s: name %q, want %q", pos, c.Name, name)
			}

			pos = projectionstest.Append(t, env.Store, []historygen.Record{{Stream: domain.StockStream("SKU-A"),
				Event: domain.StockAdjusted{SKU: "SKU-A", Delta: 1, Reason: "count", AdjustedAt: projectionstest.Day(6, 10, i)}}})
			var level projections.StockLevel
			read(t, s, "/v1/inventory/SKU-A?after="+pos.String(), &level)
			if want := int64(before) + int64(i); level.OnHand != want {
				t.Fatalf("SKU-A after %s: on hand %d, want %d", pos, level.OnHand, want)
			}
		}
	})
}

// TestCachedAnswersAreTheDocuments: a document answered from the cache is the same, byte for
// byte and header for header, as the one rendered from the read model.
func TestCachedAnswersAreTheDocuments(t *testing.T) {
	env := projectionstest.OpenSQLite(t)
	s := newServer(t, env, readapi.DefaultAfterTimeout)
	for _, target := range []string{"/v1/customers/alice", "/v1/inventory/SKU-B"} {
		first := s.get(t, target+"?after="+s.head.String())
		again := s.get(t, target)
		if first.Code != http.StatusOK || again.Code != http.StatusOK ||
			first.Body.String() != again.Body.String() || again.Header().Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: first %d %q, then %d %s %q", target, first.Code, first.Body, again.Code, again.Header(), again.Body)
		}
	}
	s.expect(t, "/v1/customers/alice", alice)
	s.expect(t, "/v1/inventory/SKU-B", skuB)
	if w := s.get(t, "/v1/customers/nobody"); w.Code != http.StatusNotFound {
		t.Errorf("GET /v1/customers/nobody: %d, want 404", w.Code)
	}
}

func read(t *testing.T, s *server, target string, dst any) {
	t.Helper()
	w := s.get(t, target)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), dst); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
}
