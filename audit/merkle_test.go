package audit

import (
	"crypto/sha256"
	"testing"
)

// rfc6962Root is RFC 6962's recursive definition (section 2.1) with our tags: split after the
// largest power of two below n. merkleRoot builds the tree bottom up; they must agree.
func rfc6962Root(leaves [][sha256.Size]byte) [sha256.Size]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	left, right := rfc6962Root(leaves[:k]), rfc6962Root(leaves[k:])
	return sha256.Sum256(append(append([]byte(nodeTag), left[:]...), right[:]...))
}

func TestMerkleRootIsRFC6962(t *testing.T) {
	for n := 1; n <= 70; n++ {
		leaves := make([][sha256.Size]byte, n)
		for i := range leaves {
			leaves[i] = leafHash("order-"+string(rune('a'+i%26)), uint64(i), [32]byte{byte(i)})
		}
		want := rfc6962Root(leaves)
		if got := merkleRoot(append([][sha256.Size]byte(nil), leaves...)); got != want {
			t.Fatalf("%d leaves: root %x, RFC 6962 gives %x", n, got, want)
		}
	}
}

func TestMerkleRootDependsOnEveryLeafAndItsPlace(t *testing.T) {
	leaves := make([][sha256.Size]byte, 5)
	for i := range leaves {
		leaves[i] = leafHash("s", uint64(i), [32]byte{})
	}
	root := merkleRoot(append([][sha256.Size]byte(nil), leaves...))
	// Duplicating the odd last leaf must not give the same root (Bitcoin's tree does).
	if dup := merkleRoot(append(append([][sha256.Size]byte(nil), leaves...), leaves[4])); dup == root {
		t.Error("appending a copy of the last leaf keeps the root")
	}
	swapped := append([][sha256.Size]byte(nil), leaves...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	if merkleRoot(swapped) == root {
		t.Error("swapping two leaves keeps the root")
	}
	if one := merkleRoot([][sha256.Size]byte{leaves[0]}); one != leaves[0] {
		t.Error("a single leaf is not its own root")
	}
}
