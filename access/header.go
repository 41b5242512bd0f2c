package access

import (
	"errors"
	"strings"
)

// MaxCredentialLength bounds a bearer credential; a JWT from an identity provider is well
// under it, and nothing longer is hashed or parsed.
const MaxCredentialLength = 8192

// ErrMalformedAuthorization: the Authorization header is not "Bearer <token68>".
var ErrMalformedAuthorization = errors.New(`the Authorization header must be "Bearer <token>"`)

// ParseAuthorization returns the credential of an Authorization header value of the Bearer
// scheme (RFC 6750: the scheme's name in any case, one space, a token68). An empty header is
// ("", nil): the request carries no credential.
func ParseAuthorization(header string) (string, error) {
	if header == "" {
		return "", nil
	}
	scheme, credential, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMalformedAuthorization
	}
	if credential == "" || len(credential) > MaxCredentialLength || !token68(credential) {
		return "", ErrMalformedAuthorization
	}
	return credential, nil
}

// token68 reports whether s is RFC 7235's token68: letters, digits, -._~+/ and trailing '='.
func token68(s string) bool {
	padding := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			padding = true
			if i == 0 {
				return false
			}
		case padding:
			return false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
