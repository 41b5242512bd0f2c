package privacy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// sealedPrefix starts every sealed field value: "pd1:" then base64 of nonce || ciphertext.
const sealedPrefix = "pd1:"

// sealedMarker is how a sealed value starts inside JSON data, which a read looks for before
// it parses anything.
var sealedMarker = []byte(`"` + sealedPrefix)

// ErasedType is the type of the event that records an erasure (domain.CustomerErased).
var erasedType = domain.CustomerErased{}.EventType()

// Store wraps an event store: appends seal personal fields, reads open them. A field whose
// key was destroyed reads as null. Hash, position and every other field of an event are the
// stored ones; Unwrap gives the store itself, for what must see the stored bytes (audit
// verify, export).
type Store struct {
	inner eventstore.Store
	keys  *Keys
}

var _ eventstore.Store = (*Store)(nil)

// sqlStore is a Store over a store that also keeps snapshots and finds events by ID (SQLite,
// PostgreSQL): the command handler finds those by type assertion.
type sqlStore struct {
	*Store
	snapshots eventstore.Snapshots
	finder    eventstore.EventFinder
}

var (
	_ eventstore.Snapshots   = (*sqlStore)(nil)
	_ eventstore.EventFinder = (*sqlStore)(nil)
)

// Wrap returns inner with personal fields sealed by keys. It keeps inner's snapshots and
// event finder, when it has both.
func Wrap(inner eventstore.Store, keys *Keys) eventstore.Store {
	s := &Store{inner: inner, keys: keys}
	snaps, okS := inner.(eventstore.Snapshots)
	finder, okF := inner.(eventstore.EventFinder)
	if okS && okF {
		return &sqlStore{Store: s, snapshots: snaps, finder: finder}
	}
	return s
}

// Unwrap returns the store that holds the sealed bytes, or store itself when it is not a
// privacy store.
func Unwrap(store eventstore.Store) eventstore.Store {
	if p := Of(store); p != nil {
		return p.inner
	}
	return store
}

// Of returns the privacy Store of store, or nil when store is not one.
func Of(store eventstore.Store) *Store {
	switch s := store.(type) {
	case *Store:
		return s
	case *sqlStore:
		return s.Store
	}
	return nil
}

// Keys is the key store.
func (s *Store) Keys() *Keys { return s.keys }

// Append seals the personal fields of events, then appends them. A personal field of an
// erased customer is domain.ErrCustomerErased.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	var sealedEvents []eventstore.EventData
	for i, e := range events {
		if domain.PersonalFields(e.Type) == nil {
			continue
		}
		data, err := s.sealData(ctx, e.Type, e.Data)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if sealedEvents == nil {
			sealedEvents = append([]eventstore.EventData(nil), events...)
		}
		sealedEvents[i].Data = data
	}
	if sealedEvents != nil {
		events = sealedEvents
	}
	res, err := s.inner.Append(ctx, stream, expected, events...)
	if err == nil {
		for _, e := range events {
			if e.Type == erasedType {
				// This process forgets the key now; others do when their cached copy expires.
				s.keys.forget(subjectOf(e.Data))
			}
		}
	}
	return res, err
}

// fieldAAD binds a sealed value to its customer and field, so a value moved to another
// customer or field does not open.
func fieldAAD(customerID, field string) []byte {
	return []byte("orderledger personal data\x00" + customerID + "\x00" + field)
}

// sealData returns data with its personal fields sealed.
func (s *Store) sealData(ctx context.Context, eventType string, data []byte) ([]byte, error) {
	if out, ok, err := s.sealFlat(ctx, eventType, data); ok || err != nil {
		return out, err
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(data, &object); err != nil {
		return nil, fmt.Errorf("%w: %s data is not a JSON object: %v", eventstore.ErrInvalidEvent, eventType, err)
	}
	var subject string
	if raw, ok := object["customer_id"]; !ok || json.Unmarshal(raw, &subject) != nil || subject == "" {
		return nil, fmt.Errorf("%w: %s data names no customer_id, whose key would seal its personal data", eventstore.ErrInvalidEvent, eventType)
	}
	changed := false
	for _, field := range domain.PersonalFields(eventType) {
		raw, ok := object[field]
		if !ok || string(raw) == "null" {
			continue
		}
		var value string
		if err := json.Unmarshal(raw, &value); err != nil {
			return nil, fmt.Errorf("%w: %s.%s is not a string", eventstore.ErrInvalidEvent, eventType, field)
		}
		if value == "" {
			continue
		}
		key, err := s.keys.dataKey(ctx, subject, true)
		if err != nil {
			return nil, err
		}
		sealed := sealedPrefix + base64.StdEncoding.EncodeToString(seal(key, []byte(value), fieldAAD(subject, field)))
		object[field], _ = json.Marshal(sealed)
		changed = true
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(object)
}

// subjectOf returns the customer_id of event data ("" when it has none).
func subjectOf(data []byte) string {
	var v struct {
		CustomerID string `json:"customer_id"`
	}
	_ = json.Unmarshal(data, &v)
	return v.CustomerID
}

// openEvents opens the sealed fields of events in place (it copies what it changes).
func (s *Store) openEvents(ctx context.Context, events []eventstore.Event) ([]eventstore.Event, error) {
	copied := false
	for i := range events {
		e := &events[i]
		if e.Type == erasedType {
			s.keys.forget(subjectOf(e.Data))
			continue
		}
		if domain.PersonalFields(e.Type) == nil || !bytes.Contains(e.Data, sealedMarker) {
			continue
		}
		data, _, err := s.openData(ctx, e.Type, e.Data)
		if err != nil {
			return nil, fmt.Errorf("%s version %d: %w", e.Stream, e.Version, err)
		}
		if !copied {
			events = append([]eventstore.Event(nil), events...)
			e = &events[i]
			copied = true
		}
		e.Data = data
	}
	return events, nil
}

// FieldState says how a personal field is stored.
type FieldState string

const (
	// Sealed: encrypted under the customer's data key, which opens it.
	Sealed FieldState = "encrypted"
	// Shredded: encrypted under a data key that was destroyed; it reads as null.
	Shredded FieldState = "erased"
	// Plaintext: written before personal data was encrypted; it cannot be erased.
	Plaintext FieldState = "plaintext"
)

// openData returns data with its sealed personal fields opened (null where the key is gone),
// and how each personal field present was stored.
func (s *Store) openData(ctx context.Context, eventType string, data []byte) ([]byte, map[string]FieldState, error) {
	if out, states, ok, err := s.openFlat(ctx, eventType, data); ok || err != nil {
		return out, states, err
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal(data, &object); err != nil {
		return nil, nil, fmt.Errorf("%s data is not a JSON object: %w", eventType, err)
	}
	var subject string
	if raw, ok := object["customer_id"]; ok {
		_ = json.Unmarshal(raw, &subject)
	}
	states := map[string]FieldState{}
	for _, field := range domain.PersonalFields(eventType) {
		raw, ok := object[field]
		if !ok || string(raw) == "null" {
			continue
		}
		var value string
		if json.Unmarshal(raw, &value) != nil || value == "" {
			continue
		}
		encoded, sealed := bytes.CutPrefix([]byte(value), []byte(sealedPrefix))
		if !sealed {
			states[field] = Plaintext
			continue
		}
		key, err := s.keys.dataKey(ctx, subject, false)
		if errors.Is(err, domain.ErrCustomerErased) || errors.Is(err, errNoKey) {
			object[field] = json.RawMessage("null")
			states[field] = Shredded
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		ciphertext, err := base64.StdEncoding.DecodeString(string(encoded))
		if err != nil {
			return nil, nil, fmt.Errorf("%s.%s: sealed value is not base64: %w", eventType, field, err)
		}
		plain, err := open(key, ciphertext, fieldAAD(subject, field))
		if err != nil {
			return nil, nil, fmt.Errorf("%s.%s of customer %s does not open with the customer's data key", eventType, field, subject)
		}
		object[field], _ = json.Marshal(string(plain))
		states[field] = Sealed
	}
	out, err := json.Marshal(object)
	return out, states, err
}

// ReadStream reads from the wrapped store and opens personal fields.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	events, err := s.inner.ReadStream(ctx, stream, from, limit)
	if err != nil {
		return nil, err
	}
	return s.openEvents(ctx, events)
}

// ReadAll reads from the wrapped store and opens personal fields.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	events, err := s.inner.ReadAll(ctx, from, limit)
	if err != nil {
		return nil, err
	}
	return s.openEvents(ctx, events)
}

// Subscribe follows the wrapped store and opens personal fields before handle sees them.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, handle func(ctx context.Context, batch []eventstore.Event) error) error {
	return s.inner.Subscribe(ctx, from, func(ctx context.Context, batch []eventstore.Event) error {
		opened, err := s.openEvents(ctx, batch)
		if err != nil {
			return err
		}
		return handle(ctx, opened)
	})
}

// Head is the wrapped store's.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) { return s.inner.Head(ctx) }

// Close closes the wrapped store and the key store.
func (s *Store) Close() error { return errors.Join(s.inner.Close(), s.keys.Close()) }

// LoadSnapshot is the wrapped store's: snapshots hold no personal data (stock, numbering).
func (s *sqlStore) LoadSnapshot(ctx context.Context, stream string) (eventstore.Snapshot, bool, error) {
	return s.snapshots.LoadSnapshot(ctx, stream)
}

// SaveSnapshot is the wrapped store's.
func (s *sqlStore) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	return s.snapshots.SaveSnapshot(ctx, snap)
}

// FindEvent finds the event in the wrapped store and opens its personal fields.
func (s *sqlStore) FindEvent(ctx context.Context, stream string, id uuid.UUID) (eventstore.Event, bool, error) {
	e, found, err := s.finder.FindEvent(ctx, stream, id)
	if err != nil || !found {
		return e, found, err
	}
	opened, err := s.openEvents(ctx, []eventstore.Event{e})
	if err != nil {
		return eventstore.Event{}, false, err
	}
	return opened[0], true, nil
}
