package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderledger/orderledger/domain"
)

// The cache holds at most its bytes, counted anew as a state grows, dropping the least
// recently used first; one entry larger than the bound alone stays.
func TestStateCacheBoundedInBytes(t *testing.T) {
	c := newStateCache(1000, 10*entryBytes)
	for i := range 30 {
		c.put(fmt.Sprintf("s%d", i), &cacheEntry{state: domain.Order{}, version: 0})
		if n, b := c.usage(); b > 10*entryBytes || n > 10 {
			t.Fatalf("after %d puts: %d entries, %d bytes", i+1, n, b)
		}
	}
	if c.get("s19") != nil || c.get("s20") == nil || c.get("s29") == nil {
		t.Fatal("not the least recently used were dropped")
	}
	// A state that grows is counted at its new size when put again.
	big := &cacheEntry{state: domain.Order{}}
	c.put("big", big)
	for i := range recentLimit + 10 {
		var id [16]byte
		id[0], id[1] = byte(i), byte(i>>8)
		big.recent.add(id, eventRef{version: uint64(i)})
	}
	c.put("big", big)
	if want := entryBytes + recentLimit*recentBytes; big.bytes != want {
		t.Fatalf("entry counted %d bytes, want %d (its recent IDs bounded at %d)", big.bytes, want, recentLimit)
	}
	if n, b := c.usage(); n != 1 || b != big.bytes {
		t.Fatalf("with an entry larger than the bound: %d entries, %d bytes", n, b)
	}
	c.drop("big")
	if n, b := c.usage(); n != 0 || b != 0 {
		t.Fatalf("empty cache holds %d entries, %d bytes", n, b)
	}
}

func TestCacheSizeOnMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHandler(nil, WithMetrics(NewMetrics(reg)), WithCacheBytes(1<<20))
	h.cache.put("s", &cacheEntry{state: domain.Series{}})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "orderledger_command_cache_") {
			got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if got["orderledger_command_cache_bytes"] != entryBytes || got["orderledger_command_cache_streams"] != 1 {
		t.Fatalf("metrics %v, want %d bytes and 1 stream", got, entryBytes)
	}
}
