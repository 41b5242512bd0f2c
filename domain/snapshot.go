package domain

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Snapshots of the states of streams that live for years, so that loading one reads its last
// snapshot and the events after it instead of its whole history. A snapshot is the state as
// data: encoding a state and decoding it again gives a state that decides and evolves alike.
// Each shape has a schema name; change the name whenever the shape or its meaning changes, so
// that snapshots of the old shape are folded anew rather than misread.

// StockSnapshotSchema and SeriesSnapshotSchema name the shapes below.
const (
	StockSnapshotSchema  = "stock.v1"
	SeriesSnapshotSchema = "series.v1"
)

type stockSnapshot struct {
	SKU            string              `json:"sku"`
	Exists         bool                `json:"exists"`
	OnHand         int64               `json:"on_hand"`
	Reserved       int64               `json:"reserved"`
	Incoming       int64               `json:"incoming"`
	Policy         ReplenishmentPolicy `json:"policy"`
	Replenishments int64               `json:"replenishments"`
	Queue          []Backorder         `json:"queue"`
	Reservations   map[string]int64    `json:"reservations"`
	OpenPOs        map[string]int64    `json:"open_purchase_orders"`
	Asked          []string            `json:"asked"`
	Released       []string            `json:"released"`
	Shipped        []string            `json:"shipped"`
	ClosedOrders   []string            `json:"closed_orders"`
	Restocks       [][2]string         `json:"restocks"` // order, return; oldest first
	Receipts       []string            `json:"receipts"`
}

// SnapshotSchema names the shape MarshalSnapshot writes.
func (s Stock) SnapshotSchema() string { return StockSnapshotSchema }

// MarshalSnapshot encodes the state; the same state always encodes to the same bytes.
func (s Stock) MarshalSnapshot() ([]byte, error) {
	snap := stockSnapshot{
		SKU: s.SKU, Exists: s.Exists, OnHand: s.OnHand, Reserved: s.Reserved, Incoming: s.Incoming,
		Policy: s.Policy, Replenishments: s.Replenishments, Queue: s.queue,
		Reservations: s.reservations, OpenPOs: s.openPOs,
		Asked: sortedKeys(s.asked), Released: sortedKeys(s.released), Shipped: sortedKeys(s.shipped),
		ClosedOrders: s.closedOrders, Receipts: s.receipts,
	}
	for _, r := range s.restocks {
		snap.Restocks = append(snap.Restocks, [2]string{r.orderID, r.returnID})
	}
	return json.Marshal(snap)
}

// UnmarshalSnapshot decodes what MarshalSnapshot encoded into s.
func (s *Stock) UnmarshalSnapshot(data []byte) error {
	var snap stockSnapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("stock snapshot: %w", err)
	}
	*s = EvolveStock(Stock{}, nil) // the empty state, its maps made
	s.SKU, s.Exists, s.OnHand, s.Reserved, s.Incoming = snap.SKU, snap.Exists, snap.OnHand, snap.Reserved, snap.Incoming
	s.Policy, s.Replenishments, s.queue = snap.Policy, snap.Replenishments, snap.Queue
	for order, n := range snap.Reservations {
		s.reservations[order] = n
	}
	for po, n := range snap.OpenPOs {
		s.openPOs[po] = n
	}
	for _, set := range []struct {
		keys []string
		into map[string]bool
	}{{snap.Asked, s.asked}, {snap.Released, s.released}, {snap.Shipped, s.shipped}} {
		for _, k := range set.keys {
			set.into[k] = true
		}
	}
	s.closedOrders = snap.ClosedOrders
	for _, r := range snap.Restocks {
		key := orderReturn{r[0], r[1]}
		s.restocks = append(s.restocks, key)
		s.restocked[key] = true
	}
	s.receipts = snap.Receipts
	for _, po := range snap.Receipts {
		s.received[po] = true
	}
	return nil
}

// Remembered counts what the state holds per order, return and purchase order: what its size
// grows with.
func (s Stock) Remembered() int {
	return len(s.queue) + len(s.reservations) + len(s.openPOs) + len(s.asked) + len(s.released) +
		len(s.shipped) + len(s.restocked) + len(s.received)
}

type seriesSnapshot struct {
	Count   int64    `json:"count"`
	Keys    []string `json:"keys"` // the documents of the last numbers remembered, oldest first
	Numbers []int64  `json:"numbers"`
}

// SnapshotSchema names the shape MarshalSnapshot writes.
func (s Series) SnapshotSchema() string { return SeriesSnapshotSchema }

// MarshalSnapshot encodes the state; the same state always encodes to the same bytes.
func (s Series) MarshalSnapshot() ([]byte, error) {
	snap := seriesSnapshot{Count: s.Count}
	for _, k := range s.keys {
		if n, ok := s.byKey[k]; ok {
			snap.Keys, snap.Numbers = append(snap.Keys, k), append(snap.Numbers, n)
		}
	}
	return json.Marshal(snap)
}

// UnmarshalSnapshot decodes what MarshalSnapshot encoded into s.
func (s *Series) UnmarshalSnapshot(data []byte) error {
	var snap seriesSnapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("series snapshot: %w", err)
	}
	if len(snap.Keys) != len(snap.Numbers) {
		return fmt.Errorf("series snapshot: %d keys for %d numbers", len(snap.Keys), len(snap.Numbers))
	}
	*s = Series{Count: snap.Count, byKey: make(map[string]int64, len(snap.Keys)), keys: snap.Keys}
	for i, k := range snap.Keys {
		s.byKey[k] = snap.Numbers[i]
	}
	return nil
}

// Remembered counts the documents whose numbers the state holds.
func (s Series) Remembered() int { return len(s.byKey) }

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
