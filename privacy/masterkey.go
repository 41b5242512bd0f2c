package privacy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyError says what is wrong with the master key file: missing, unreadable, not a key,
// or not the key the store's data keys are wrapped with. The CLI exits 2 on it.
type MasterKeyError struct {
	Path   string
	Reason string
}

func (e *MasterKeyError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return fmt.Sprintf("master key file %s: %s", e.Path, e.Reason)
}

// IsMasterKeyError reports whether err is (or wraps) a MasterKeyError.
func IsMasterKeyError(err error) bool {
	var mk *MasterKeyError
	return errors.As(err, &mk)
}

// keySize is the size of every key: AES-256.
const keySize = 32

// masterKeyPrefix starts the one line of a master key file, so that a file of another kind
// given by mistake is refused rather than taken for a key.
const masterKeyPrefix = "orderledger-master-key-v1:"

// readMasterKey reads the key in path; a missing file is reported with fs.ErrNotExist wrapped.
func readMasterKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w", fs.ErrNotExist)
		}
		return nil, &MasterKeyError{Path: path, Reason: err.Error()}
	}
	text := strings.TrimSpace(string(raw))
	encoded, ok := strings.CutPrefix(text, masterKeyPrefix)
	if !ok {
		return nil, &MasterKeyError{Path: path, Reason: "not an orderledger master key (want one line " + masterKeyPrefix + "<base64 of 32 bytes>)"}
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(key) != keySize {
		return nil, &MasterKeyError{Path: path, Reason: "not an orderledger master key (want 32 bytes in base64 after " + masterKeyPrefix + ")"}
	}
	return key, nil
}

// newMasterKey draws a key.
func newMasterKey() []byte {
	key := make([]byte, keySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	return key
}

// writeMasterKeyFile writes key to path, mode 0600, never replacing a file that is there: it
// writes a temporary file beside path and links it to path, which fails if path exists. With
// replace, it renames the temporary file over path instead (key rotation).
func writeMasterKeyFile(path string, key []byte, replace bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &MasterKeyError{Path: path, Reason: err.Error()}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return &MasterKeyError{Path: path, Reason: err.Error()}
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return &MasterKeyError{Path: path, Reason: err.Error()}
	}
	line := masterKeyPrefix + base64.StdEncoding.EncodeToString(key) + "\n"
	if _, err := tmp.WriteString(line); err != nil {
		tmp.Close()
		return &MasterKeyError{Path: path, Reason: err.Error()}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return &MasterKeyError{Path: path, Reason: err.Error()}
	}
	if err := tmp.Close(); err != nil {
		return &MasterKeyError{Path: path, Reason: err.Error()}
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// newGCM returns AES-256-GCM under key.
func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // only a key of the wrong size fails, and every key here is 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// seal encrypts plaintext with a random nonce, returning nonce || ciphertext.
func seal(aead cipher.AEAD, plaintext, additional []byte) []byte {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, additional)
}

// open decrypts what seal returned.
func open(aead cipher.AEAD, sealed, additional []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	return aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], additional)
}
