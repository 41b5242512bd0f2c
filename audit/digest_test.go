package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/audit"
	"github.com/orderledger/orderledger/eventstore"
)

func TestDigestCoversItsPositionOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store, _ := b.open(t)
		log := seedLog(t, store, 200)
		d, report, err := audit.TakeDigest(t.Context(), store, audit.Options{BatchSize: 33})
		if err != nil || !report.OK {
			t.Fatalf("digest: %+v, %v", report, err)
		}
		if d.Position != log[len(log)-1].Position || d.Events != 200 || d.Streams != uint64(len(seedStreams)) {
			t.Fatalf("digest %s: want position %s, %d streams, 200 events", d, log[len(log)-1].Position, len(seedStreams))
		}
		parsed, err := audit.ParseDigest(d.String())
		if err != nil || parsed != d {
			t.Fatalf("ParseDigest(%q) = %s, %v", d, parsed, err)
		}

		again, _, err := audit.DigestAt(t.Context(), store, d.Position, audit.Options{})
		if err != nil || len(d.Diff(again)) != 0 {
			t.Fatalf("unchanged log: %v, %v", d.Diff(again), err)
		}

		appendEvents(t, store, 200, 40)
		later, _, err := audit.DigestAt(t.Context(), store, d.Position, audit.Options{})
		if err != nil || len(d.Diff(later)) != 0 {
			t.Fatalf("after appending: the digest at %s changed: %v, %v", d.Position, d.Diff(later), err)
		}
		now, _, err := audit.TakeDigest(t.Context(), store, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if now.Events != 240 || now.Root == d.Root || now.Position.Compare(d.Position) <= 0 {
			t.Errorf("digest after appending: %s, before %s", now, d)
		}
	})
}

func TestDigestOfEmptyLog(t *testing.T) {
	store, _ := openSQLite(t)
	d, report, err := audit.TakeDigest(t.Context(), store, audit.Options{})
	if err != nil || !report.OK {
		t.Fatal(report, err)
	}
	want := sha256.Sum256([]byte("orderledger/digest/empty/v1"))
	if d.String() != "oldigest1:0-0:0:0:"+hex.EncodeToString(want[:]) {
		t.Errorf("empty log digest %s", d)
	}
}

func TestDigestIsRefusedForABrokenLog(t *testing.T) {
	store, raw := openSQLite(t)
	seedLog(t, store, 50)
	raw.exec(t, `UPDATE events SET data = ? WHERE stream = ? AND version = ?`, []byte(`{}`), "order-1", 0)
	d, report, err := audit.TakeDigest(t.Context(), store, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if report.OK || report.FirstFailure == nil || d != (audit.Digest{}) {
		t.Errorf("digest of a broken log: %s, %+v", d, report)
	}
}

func TestParseDigestRefusesMalformed(t *testing.T) {
	root := strings.Repeat("ab", 32)
	for _, s := range []string{
		"",
		"oldigest2:1-1:1:1:" + root,
		"oldigest1:1:1:1:" + root,
		"oldigest1:1-1:x:1:" + root,
		"oldigest1:1-1:1:-1:" + root,
		"oldigest1:1-1:1:1:" + root[:62],
		"oldigest1:1-1:1:1:" + root + ":extra",
	} {
		if _, err := audit.ParseDigest(s); err == nil {
			t.Errorf("ParseDigest(%q) accepted it", s)
		}
	}
}

func TestDigestDiffSaysWhatDiffers(t *testing.T) {
	a := audit.Digest{Position: eventstore.Position{Commit: 9, Prepare: 9}, Streams: 3, Events: 10, Root: [32]byte{1}}
	b := a
	b.Events, b.Root = 9, [32]byte{2}
	diffs := strings.Join(a.Diff(b), "; ")
	for _, want := range []string{"events: digest 10, the log now has 9", "root: digest 01"} {
		if !strings.Contains(diffs, want) {
			t.Errorf("diff %q lacks %q", diffs, want)
		}
	}
	if strings.Contains(diffs, "streams") {
		t.Errorf("diff %q names the stream count, which is equal", diffs)
	}
}
