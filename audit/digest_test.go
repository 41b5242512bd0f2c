package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
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

func TestHeadsRoundTripAndProveThemselves(t *testing.T) {
	store, _ := openSQLite(t)
	log := seedLog(t, store, 80)
	d, heads, _, err := audit.HeadsAt(t.Context(), store, log[len(log)-1].Position, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != len(seedStreams) || audit.RootOf(heads) != d.Root {
		t.Fatalf("%d heads with root %x; digest %s", len(heads), audit.RootOf(heads), d)
	}
	var buf bytes.Buffer
	if err := audit.WriteHeads(&buf, heads); err != nil {
		t.Fatal(err)
	}
	read, err := audit.ReadHeads(&buf)
	if err != nil || !slices.Equal(read, heads) {
		t.Fatalf("ReadHeads(WriteHeads(heads)) = %v, %v; want %v", read, err, heads)
	}
	forged := slices.Clone(heads)
	forged[2].Version++
	if audit.RootOf(forged) == d.Root {
		t.Error("a changed head keeps the digest's root")
	}
	if _, err := audit.ReadHeads(strings.NewReader("1\tnothex\torder-1\n")); err == nil {
		t.Error("ReadHeads accepted a bad hash")
	}
}

func TestDiffHeadsNamesEveryChange(t *testing.T) {
	h := func(stream string, version uint64) audit.Head {
		return audit.Head{Stream: stream, Version: version, Hash: eventstore.Hash{byte(version)}}
	}
	want := []audit.Head{h("a", 1), h("b", 2), h("c", 3)}
	got := []audit.Head{h("a", 1), h("b", 1), h("d", 0)}
	diffs := audit.DiffHeads(want, got)
	if len(diffs) != 3 ||
		!strings.HasPrefix(diffs[0], `stream "b": version 2 (hash 02`) || !strings.Contains(diffs[0], "version 1 (hash 01") ||
		!strings.HasPrefix(diffs[1], `stream "c": version 3`) || !strings.Contains(diffs[1], "no event now") ||
		!strings.HasPrefix(diffs[2], `stream "d": not in the digest, version 0`) {
		t.Errorf("diffs %q", diffs)
	}
	if d := audit.DiffHeads(want, want); len(d) != 0 {
		t.Errorf("equal heads differ: %q", d)
	}
}
