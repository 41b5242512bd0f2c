package kurrentdb

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderledger/orderledger/eventstore"
)

// clientError returns the *esdb.Error the client itself produces for code. The type's fields
// are unexported, so the errors come from real calls: a closed client, a client at an address
// where nothing listens, and a conflicting append to the fake server.
func clientError(t *testing.T, code esdb.ErrorCode) error {
	t.Helper()
	conn := "esdb://127.0.0.1:1?tls=false&maxDiscoverAttempts=1"
	var f *fakeServer
	if code == esdb.ErrorCodeWrongExpectedVersion {
		f = newFakeServer(t)
		conn = f.connString()
	}
	cfg, err := parseConnString(conn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if code == esdb.ErrorCodeConnectionClosed {
		client.Close()
	}
	ctx := t.Context()
	_, err = client.AppendToStream(ctx, "order-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(5)},
		esdb.EventData{EventID: uuid.New(), EventType: "Test.v1", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
	var esdbErr *esdb.Error
	if !errors.As(err, &esdbErr) || esdbErr.Code() != code {
		t.Fatalf("wanted a client error with code %d, got %v", code, err)
	}
	return err
}

func TestMapError(t *testing.T) {
	const addr = "db.example:2113"
	cases := []struct {
		name        string
		err         error
		wrongRev    bool
		unavailable bool
	}{
		{"WrongExpectedVersion", clientError(t, esdb.ErrorCodeWrongExpectedVersion), true, false},
		{"ClientClosed", clientError(t, esdb.ErrorCodeConnectionClosed), false, true},
		{"DiscoveryFailed", clientError(t, esdb.ErrorUnavailable), false, true},
		{"WrappedByTheClient", fmt.Errorf("could not construct append operation. Reason: %w", clientError(t, esdb.ErrorCodeConnectionClosed)), false, true},
		{"UnknownCode", func() error { e, _ := esdb.FromError(errors.New("boom")); return e }(), false, false},
		{"BareUnavailable", status.Error(codes.Unavailable, "connection refused"), false, true},
		{"BareDeadline", status.Error(codes.DeadlineExceeded, "too slow"), false, true},
		{"CommitTimeout", status.Error(codes.Aborted, "Operation timed out: Commit phase timeout."), false, true},
		{"BareUnauthenticated", status.Error(codes.Unauthenticated, "who are you"), false, false},
		{"Plain", errors.New("disk on fire"), false, false},
	}
	for _, c := range cases {
		got := mapError(c.err, addr)
		if errors.Is(got, eventstore.ErrWrongExpectedRevision) != c.wrongRev || errors.Is(got, eventstore.ErrUnavailable) != c.unavailable {
			t.Errorf("%s: mapped to %q; want wrong revision %v, unavailable %v", c.name, got, c.wrongRev, c.unavailable)
		}
		if !strings.Contains(got.Error(), addr) {
			t.Errorf("%s: %q does not name the server", c.name, got)
		}
		if !errors.Is(got, c.err) {
			t.Errorf("%s: %q no longer wraps the client's error", c.name, got)
		}
	}
}

func TestAfterDrop(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		failures int
		action   dropAction
		delay    time.Duration
	}{
		{"ClientClosedItself", clientError(t, esdb.ErrorCodeConnectionClosed), 0, rebuildClient, minBackoff},
		{"ClientClosedWrapped", fmt.Errorf("failed to construct subscription. Reason: %w", clientError(t, esdb.ErrorCodeConnectionClosed)), 1, rebuildClient, 2 * minBackoff},
		{"DiscoveryFailed", clientError(t, esdb.ErrorUnavailable), 2, resubscribe, 4 * minBackoff},
		{"StreamDropped", status.Error(codes.Unavailable, "transport is closing"), 0, resubscribe, minBackoff},
		{"ServerAborted", status.Error(codes.Aborted, "leader changed"), 3, resubscribe, 8 * minBackoff},
		{"Unknown", errors.New("something else"), 6, resubscribe, 64 * minBackoff},
		{"Capped", errors.New("something else"), 7, resubscribe, maxBackoff},
		{"FarBeyondTheCap", errors.New("something else"), 1000, resubscribe, maxBackoff},
		{"NoConnectionInTime", fmt.Errorf("kurrentdb at x: %w", errStuck), 2, rebuildClient, 4 * minBackoff},
		{"Unauthenticated", status.Error(codes.Unauthenticated, "bad password"), 0, giveUp, 0},
		{"PermissionDenied", status.Error(codes.PermissionDenied, "no read on $all"), 4, giveUp, 0},
	}
	for _, c := range cases {
		action, delay := afterDrop(c.err, c.failures)
		if action != c.action || delay != c.delay {
			t.Errorf("%s after %d failures: action %d in %v, want %d in %v", c.name, c.failures, action, delay, c.action, c.delay)
		}
	}
}

func TestConnectPatienceCoversDiscovery(t *testing.T) {
	cases := []struct {
		conn string
		want time.Duration
	}{
		// 10 attempts of one 5s features read and a 100ms pause, a 10s call, 2s slack
		{"esdb://localhost", 10*(5*time.Second+100*time.Millisecond) + 12*time.Second},
		// a cluster: per attempt, a gossip and a features read for each of 3 seeds
		{"esdb://a,b,c?maxDiscoverAttempts=2&gossipTimeout=1&discoveryInterval=50&defaultDeadline=500",
			2*(3*2*time.Second+50*time.Millisecond) + 500*time.Millisecond + 2*time.Second},
		{"esdb+discover://cluster?maxDiscoverAttempts=1&gossipTimeout=3", 2*3*time.Second + 100*time.Millisecond + 12*time.Second},
	}
	for _, c := range cases {
		cfg, err := parseConnString(c.conn)
		if err != nil {
			t.Fatal(err)
		}
		if got := connectPatience(cfg); got != c.want {
			t.Errorf("%s: patience %v, want %v", c.conn, got, c.want)
		}
	}
}
