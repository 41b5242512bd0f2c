package privacy_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/pgtest"
	"github.com/orderledger/orderledger/internal/stores"
	"github.com/orderledger/orderledger/privacy"
)

// backend is a fresh event store DSN and the master key file its keys use.
type backend struct {
	name string
	new  func(t *testing.T) (dsn, keyFile string)
}

var backends = []backend{
	{"sqlite", func(t *testing.T) (string, string) {
		path := filepath.Join(t.TempDir(), "events.db")
		return "sqlite:" + path, privacy.DefaultMasterKeyFile(path)
	}},
	{"postgres", func(t *testing.T) (string, string) {
		return pgtest.NewDatabase(t), filepath.Join(t.TempDir(), "master-key")
	}},
}

func forEachBackend(t *testing.T, f func(t *testing.T, dsn, keyFile string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn, keyFile := b.new(t)
			f(t, dsn, keyFile)
		})
	}
}

// open opens the event store at dsn wrapped by the key store with keyFile.
func open(t *testing.T, dsn, keyFile string) (eventstore.Store, *privacy.Keys) {
	t.Helper()
	inner, err := stores.OpenEvents(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := privacy.Open(t.Context(), dsn, keyFile, privacy.CreateIfNew())
	if err != nil {
		inner.Close()
		t.Fatal(err)
	}
	store := privacy.Wrap(inner, keys)
	t.Cleanup(func() { store.Close() })
	return store, keys
}

func appendEvent(t *testing.T, store eventstore.Store, stream string, e domain.Event) (eventstore.AppendResult, error) {
	t.Helper()
	typ, data, err := domain.EncodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return store.Append(t.Context(), stream, eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data})
}

var (
	alice   = domain.CustomerRegistered{CustomerID: "C1", Name: "Alice Wonder", Email: "alice@example.com", Phone: "+351 555 0101", RegisteredAt: time.Unix(1700000000, 0).UTC()}
	order   = domain.OrderPlaced{OrderID: "O1", CustomerID: "C1", Channel: "web", Currency: "EUR", Lines: []domain.OrderLine{{SKU: "S1", Quantity: 1, UnitPrice: 1000}}, Subtotal: 1000, Total: 1000, ShippingAddress: "7 Rua Augusta, Lisboa", PlacedAt: time.Unix(1700000100, 0).UTC()}
	secrets = []string{"Alice", "alice@example.com", "555 0101", "Rua Augusta"}
)

// TestSealedOnDiskOpenedOnRead: the stored bytes hold ciphertext only, a read through the
// wrapper gives the plaintext back, and the hash chain covers the stored bytes.
func TestSealedOnDiskOpenedOnRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn, keyFile string) {
		store, _ := open(t, dsn, keyFile)
		if _, err := appendEvent(t, store, domain.CustomerStream("C1"), alice); err != nil {
			t.Fatal(err)
		}
		if _, err := appendEvent(t, store, domain.OrderStream("O1"), order); err != nil {
			t.Fatal(err)
		}
		raw, err := privacy.Unwrap(store).ReadAll(t.Context(), eventstore.Position{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range raw {
			for _, s := range secrets {
				if bytes.Contains(e.Data, []byte(s)) {
					t.Errorf("stored %s holds %q in plaintext: %s", e.Type, s, e.Data)
				}
			}
			if !bytes.Contains(e.Data, []byte(`"pd1:`)) {
				t.Errorf("stored %s holds no sealed value: %s", e.Type, e.Data)
			}
		}
		opened, err := store.ReadAll(t.Context(), eventstore.Position{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		c, err := domain.DecodeEvent(opened[0].Type, opened[0].Data)
		if err != nil || c.(domain.CustomerRegistered) != alice {
			t.Errorf("opened registration %+v, %v; want %+v", c, err, alice)
		}
		o, err := domain.DecodeEvent(opened[1].Type, opened[1].Data)
		if err != nil || o.(domain.OrderPlaced).ShippingAddress != order.ShippingAddress {
			t.Errorf("opened order %+v, %v", o, err)
		}
		if opened[0].Hash != raw[0].Hash || opened[1].Position != raw[1].Position {
			t.Errorf("a read through the wrapper changed hash or position")
		}
	})
}

// TestErasure: once the key is destroyed every sealed field reads as null, the other fields
// are unchanged, and a new personal field for the customer is refused; the key's row holds no
// key, and on SQLite the key's bytes are gone from the database file.
func TestErasure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn, keyFile string) {
		store, keys := open(t, dsn, keyFile)
		if _, err := appendEvent(t, store, domain.CustomerStream("C1"), alice); err != nil {
			t.Fatal(err)
		}
		if _, err := appendEvent(t, store, domain.OrderStream("O1"), order); err != nil {
			t.Fatal(err)
		}
		wrapped := wrappedKey(t, dsn, "C1")
		if err := keys.Destroy(t.Context(), "C1"); err != nil {
			t.Fatal(err)
		}
		if _, err := appendEvent(t, store, domain.CustomerStream("C1"), domain.CustomerErased{CustomerID: "C1", ErasedAt: time.Unix(1700000200, 0).UTC()}); err != nil {
			t.Fatal(err)
		}
		opened, err := store.ReadAll(t.Context(), eventstore.Position{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		var reg map[string]any
		if err := json.Unmarshal(opened[0].Data, &reg); err != nil {
			t.Fatal(err)
		}
		if reg["name"] != nil || reg["email"] != nil || reg["phone"] != nil || reg["customer_id"] != "C1" {
			t.Errorf("erased registration reads %v; want null personal fields and the rest", reg)
		}
		o, err := domain.DecodeEvent(opened[1].Type, opened[1].Data)
		if err != nil || o.(domain.OrderPlaced).ShippingAddress != "" || o.(domain.OrderPlaced).Total != 1000 {
			t.Errorf("erased order %+v, %v: want no address and the same total", o, err)
		}
		// A second process, which never held the key, reads the same.
		_, other := open(t, dsn, keyFile)
		if erased, err := other.Erased(t.Context(), "C1"); err != nil || !erased {
			t.Errorf("Erased = %v, %v", erased, err)
		}
		more := order
		more.OrderID = "O2"
		if _, err := appendEvent(t, store, domain.OrderStream("O2"), more); !errors.Is(err, domain.ErrCustomerErased) {
			t.Errorf("an address for an erased customer: %v, want ErrCustomerErased", err)
		}
		more.ShippingAddress = ""
		if _, err := appendEvent(t, store, domain.OrderStream("O2"), more); err != nil {
			t.Errorf("an order without personal data for an erased customer: %v", err)
		}
		if got := wrappedKey(t, dsn, "C1"); got != nil {
			t.Errorf("the key row still holds %x", got)
		}
		if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
			for _, file := range []string{path, path + "-wal"} {
				content, err := os.ReadFile(file)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				if bytes.Contains(content, wrapped) {
					t.Errorf("%s still holds the destroyed key's bytes", file)
				}
			}
		}
	})
}

// wrappedKey reads the customer's wrapped key straight from the table.
func wrappedKey(t *testing.T, dsn, customerID string) []byte {
	t.Helper()
	driver, source, query := "pgx", dsn, "SELECT wrapped FROM privacy_keys WHERE customer_id = $1"
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, source, query = "sqlite", path, "SELECT wrapped FROM privacy_keys WHERE customer_id = ?"
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var wrapped []byte
	if err := db.QueryRowContext(t.Context(), query, customerID).Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	return wrapped
}

// TestMasterKey: a new store creates the file (0600); a missing or wrong file on a store set
// up with a key is a MasterKeyError naming the file; rotation re-wraps every key so that the
// data opens under the new file and not under the old one.
func TestMasterKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn, keyFile string) {
		store, keys := open(t, dsn, keyFile)
		info, err := os.Stat(keyFile)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("master key file %v, %v: want mode 0600", info, err)
		}
		if _, err := appendEvent(t, store, domain.CustomerStream("C1"), alice); err != nil {
			t.Fatal(err)
		}
		old, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}

		missing := filepath.Join(t.TempDir(), "nowhere")
		_, err = privacy.Open(context.Background(), dsn, missing, privacy.CreateIfNew())
		if !privacy.IsMasterKeyError(err) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "missing") {
			t.Errorf("missing key file: %v", err)
		}
		wrong := filepath.Join(t.TempDir(), "wrong")
		if err := os.WriteFile(wrong, []byte("orderledger-master-key-v1:"+strings.Repeat("A", 43)+"=\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = privacy.Open(t.Context(), dsn, wrong)
		if !privacy.IsMasterKeyError(err) || !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "wrong key") {
			t.Errorf("wrong key file: %v", err)
		}
		garbage := filepath.Join(t.TempDir(), "garbage")
		if err := os.WriteFile(garbage, []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err = privacy.Open(t.Context(), dsn, garbage); !privacy.IsMasterKeyError(err) || !strings.Contains(err.Error(), "not an orderledger master key") {
			t.Errorf("not a key file: %v", err)
		}

		n, err := keys.Rotate(t.Context())
		if err != nil || n != 1 {
			t.Fatalf("Rotate = %d, %v; want 1 key re-wrapped", n, err)
		}
		rotated, err := os.ReadFile(keyFile)
		if err != nil || bytes.Equal(rotated, old) {
			t.Fatalf("the key file after rotation: %v (unchanged: %v)", err, bytes.Equal(rotated, old))
		}
		previous := filepath.Join(t.TempDir(), "previous")
		if err := os.WriteFile(previous, old, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := privacy.Open(t.Context(), dsn, previous); !privacy.IsMasterKeyError(err) {
			t.Errorf("the old key after rotation: %v, want a MasterKeyError", err)
		}
		fresh, _ := open(t, dsn, keyFile)
		events, err := fresh.ReadStream(t.Context(), domain.CustomerStream("C1"), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := domain.DecodeEvent(events[0].Type, events[0].Data); err != nil || c.(domain.CustomerRegistered) != alice {
			t.Errorf("after rotation the registration reads %+v, %v", c, err)
		}
	})
}

// TestValuesThatNeedEscaping: values JSON escapes (quotes, <, >, &, a backslash, a line
// separator) take the slower path through a parsed map and come back exactly; plain values
// are replaced in place, leaving the other fields' bytes and order as the domain wrote them.
func TestValuesThatNeedEscaping(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "events.db")
	store, _ := open(t, dsn, filepath.Join(dir, "master-key"))
	tricky := alice
	tricky.CustomerID, tricky.Name, tricky.Phone = "C9", "Zoë \"Z\" <z> & co \\ \u2028", ""
	for _, c := range []domain.CustomerRegistered{alice, tricky} {
		if _, err := appendEvent(t, store, domain.CustomerStream(c.CustomerID), c); err != nil {
			t.Fatal(err)
		}
		events, err := store.ReadStream(t.Context(), domain.CustomerStream(c.CustomerID), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := domain.DecodeEvent(events[0].Type, events[0].Data); err != nil || got.(domain.CustomerRegistered) != c {
			t.Errorf("read back %+v, %v; want %+v", got, err, c)
		}
		raw, err := privacy.Unwrap(store).ReadStream(t.Context(), domain.CustomerStream(c.CustomerID), 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw[0].Data, []byte("Zoë")) || bytes.Contains(raw[0].Data, []byte("Alice Wonder")) {
			t.Errorf("stored in plaintext: %s", raw[0].Data)
		}
	}
	raw, _ := privacy.Unwrap(store).ReadStream(t.Context(), domain.CustomerStream("C1"), 0, 1)
	if !bytes.HasPrefix(raw[0].Data, []byte(`{"customer_id":"C1","name":"pd1:`)) {
		t.Errorf("a plain registration is not sealed in place: %s", raw[0].Data)
	}
}
