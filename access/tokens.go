package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/httpx"
)

// TokenPrefix starts every secret this package issues, so a leaked one is recognisable (secret
// scanners, logs) and never mistaken for a JWT.
const TokenPrefix = "olt_"

// secretBytes is how much randomness a secret carries: 256 bits from crypto/rand.
const secretBytes = 32

// RefreshInterval is how often Follow reads the token stream: a token created or revoked by
// any process takes effect on every server within it (and the 2 s the API promises).
const RefreshInterval = time.Second

// Errors of the token lifecycle; each is a request error of the HTTP API.
var (
	ErrTokenExists   = httpx.Errorf(http.StatusConflict, "token_exists", "a token of that name was created before; names are never reused")
	ErrTokenNotFound = httpx.Errorf(http.StatusNotFound, "not_found", "no token of that name")
	ErrTokenRevoked  = httpx.Errorf(http.StatusConflict, "token_revoked", "the token is already revoked")
)

// namePattern is the contract's pattern for identifiers clients choose.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// TokenInfo is what is known of a token, never its secret.
type TokenInfo struct {
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at"`
}

type liveToken struct {
	hash [sha256.Size]byte
	info TokenInfo
}

// Tokens is the registry of tokens, folded from the log's token stream. It is safe for
// concurrent use; Authenticate never touches the store.
type Tokens struct {
	store eventstore.Store
	log   *slog.Logger

	mu     sync.RWMutex
	next   uint64                           // the stream version to read from
	byName map[string]*liveToken            // every token ever created, revoked ones too
	byHash map[[sha256.Size]byte]*liveToken // live tokens only
}

// NewTokens returns an empty registry of the tokens in store; Refresh or Follow fill it.
func NewTokens(store eventstore.Store, log *slog.Logger) *Tokens {
	if log == nil {
		log = slog.Default()
	}
	return &Tokens{store: store, log: log, byName: map[string]*liveToken{}, byHash: map[[sha256.Size]byte]*liveToken{}}
}

// Refresh reads the token events appended since the last refresh.
func (t *Tokens) Refresh(ctx context.Context) error {
	t.mu.RLock()
	from := t.next
	t.mu.RUnlock()
	for {
		events, err := t.store.ReadStream(ctx, domain.TokenRegistryStream, from, 500)
		if err != nil {
			return fmt.Errorf("read the token registry: %w", err)
		}
		if len(events) == 0 {
			return nil
		}
		t.mu.Lock()
		for _, ev := range events {
			if ev.Version < t.next {
				continue // another Refresh applied it meanwhile
			}
			if err := t.apply(ev); err != nil {
				t.mu.Unlock()
				return err
			}
			t.next = ev.Version + 1
		}
		from = t.next
		t.mu.Unlock()
	}
}

func (t *Tokens) apply(ev eventstore.Event) error {
	decoded, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		return fmt.Errorf("token registry event %d: %w", ev.Version, err)
	}
	switch e := decoded.(type) {
	case domain.TokenCreated:
		var hash [sha256.Size]byte
		if raw, err := hex.DecodeString(e.SecretSHA256); err != nil || len(raw) != sha256.Size {
			return fmt.Errorf("token registry event %d: secret_sha256 is not a SHA-256 in hex", ev.Version)
		} else {
			copy(hash[:], raw)
		}
		tok := &liveToken{hash: hash, info: TokenInfo{Name: e.Name, Role: Role(e.Role), CreatedAt: e.CreatedAt.UTC(), CreatedBy: ev.Metadata.Actor}}
		t.byName[e.Name] = tok
		t.byHash[hash] = tok
	case domain.TokenRevoked:
		if tok, ok := t.byName[e.Name]; ok && tok.info.RevokedAt == nil {
			at := e.RevokedAt.UTC()
			tok.info.RevokedAt = &at
			delete(t.byHash, tok.hash)
		}
	default:
		return fmt.Errorf("token registry event %d: unexpected type %s", ev.Version, ev.Type)
	}
	return nil
}

// Follow refreshes the registry every interval until ctx ends. A failed refresh is logged and
// tried again at the next tick: the tokens known so far stay in force.
func (t *Tokens) Follow(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := t.Refresh(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("token registry: refresh failed; the tokens known so far stay in force", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// AnyCreated reports whether a token was ever created (revoked ones count: open mode never
// comes back once tokens were in use).
func (t *Tokens) AnyCreated() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.next > 0
}

// Authenticate returns the principal of a secret this registry issued and that is not
// revoked. The secret is hashed and the hash looked up, then compared in constant time: the
// lookup's timing depends only on the hash of what the caller sent, which tells it nothing
// about any secret.
func (t *Tokens) Authenticate(_ context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Principal{}, ErrUnauthenticated
	}
	hash := sha256.Sum256([]byte(secret))
	t.mu.RLock()
	tok, ok := t.byHash[hash]
	var p Principal
	if ok && subtle.ConstantTimeCompare(tok.hash[:], hash[:]) == 1 {
		p = Principal{Name: tok.info.Name, Role: tok.info.Role}
	} else {
		ok = false
	}
	t.mu.RUnlock()
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	return p, nil
}

// List returns every token ever created, by name, revoked ones with their revocation time.
func (t *Tokens) List() []TokenInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]TokenInfo, 0, len(t.byName))
	for _, tok := range t.byName {
		out = append(out, tok.info)
	}
	slices.SortFunc(out, func(a, b TokenInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Create grants role to a new token called name, recorded with actor as who granted it, and
// returns its secret: the only time it exists outside the caller's hands.
func (t *Tokens) Create(ctx context.Context, name string, role Role, actor string, now time.Time) (string, error) {
	if !namePattern.MatchString(name) {
		return "", httpx.BadRequest("field name must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", httpx.BadRequest("field role: %v", err)
	}
	random := make([]byte, secretBytes)
	if _, err := rand.Read(random); err != nil {
		return "", fmt.Errorf("draw a token secret: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(random)
	hash := sha256.Sum256([]byte(secret))
	event := domain.TokenCreated{Name: name, Role: string(role), SecretSHA256: hex.EncodeToString(hash[:]), CreatedAt: now.UTC()}
	err := t.appendChecked(ctx, name, actor, event, func(tok *liveToken, exists bool) error {
		if exists {
			return ErrTokenExists
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// Revoke ends the token called name, recorded with actor as who revoked it.
func (t *Tokens) Revoke(ctx context.Context, name, actor string, now time.Time) error {
	return t.appendChecked(ctx, name, actor, domain.TokenRevoked{Name: name, RevokedAt: now.UTC()}, func(tok *liveToken, exists bool) error {
		switch {
		case !exists:
			return ErrTokenNotFound
		case tok.info.RevokedAt != nil:
			return ErrTokenRevoked
		}
		return nil
	})
}

// appendChecked appends event to the token stream if check passes on the registry as of the
// stream's last version, retrying when another process appended meanwhile.
func (t *Tokens) appendChecked(ctx context.Context, name, actor string, event domain.Event, check func(tok *liveToken, exists bool) error) error {
	typ, data, err := domain.EncodeEvent(event)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if err := t.Refresh(ctx); err != nil {
			return err
		}
		t.mu.RLock()
		tok, exists := t.byName[name]
		next := t.next
		t.mu.RUnlock()
		if err := check(tok, exists); err != nil {
			return err
		}
		expected := eventstore.NoStream()
		if next > 0 {
			expected = eventstore.Exact(next - 1)
		}
		_, err := t.store.Append(ctx, domain.TokenRegistryStream, expected,
			eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: eventstore.Metadata{Actor: actor}})
		if err == nil {
			return t.Refresh(ctx)
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedRevision) || attempt >= 20 {
			return fmt.Errorf("append to the token registry: %w", err)
		}
	}
}
