package integrations

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/eventstore"
)

// BenchmarkStreamFanout appends orders of 8 events with 0 or 200 stream listeners reading
// them over HTTP: ns/op is the cost of an order's events with that many listeners, the
// store's append included.
func BenchmarkStreamFanout(b *testing.B) {
	for _, listeners := range []int{0, 200} {
		b.Run(fmt.Sprintf("listeners=%d", listeners), func(b *testing.B) {
			f := newStreamFixture(b, nil)
			ctx, cancel := context.WithCancel(context.Background())
			var received atomic.Int64
			// A listener reads as a remote one would, in large reads rather than 4 KiB ones.
			client := &http.Client{Transport: &http.Transport{ReadBufferSize: 64 << 10}}
			defer client.CloseIdleConnections()
			var wg sync.WaitGroup
			for range listeners {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/v1/stream", nil)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					defer resp.Body.Close()
					s := bufio.NewScanner(resp.Body)
					for s.Scan() {
						if bytes.HasPrefix(s.Bytes(), []byte("id: ")) {
							received.Add(1)
						}
					}
				})
			}
			waitSubscribers(b, f.b, listeners)
			data := []byte(`{"order_id":"O","customer_id":"C1","channel":"web","currency":"EUR","lines":[{"sku":"S1","quantity":1,"unit_price":100}],"subtotal":100,"tax":20,"total":120,"shipping_address":"1 Main St","placed_at":"2026-01-05T10:00:00Z"}`)
			b.ResetTimer()
			for i := range b.N {
				batch := make([]eventstore.EventData, 8)
				for j := range batch {
					batch[j] = eventstore.EventData{ID: uuid.New(), Type: "OrderPlaced.v1", Data: data}
				}
				if _, err := f.store.Append(ctx, fmt.Sprintf("order-B%d", i), eventstore.NoStream(), batch...); err != nil {
					b.Fatal(err)
				}
			}
			want := int64(listeners * 8 * b.N)
			for deadline := time.Now().Add(time.Minute); received.Load() < want && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			if received.Load() < want {
				b.Fatalf("listeners received %d of %d events", received.Load(), want)
			}
		})
	}
}
