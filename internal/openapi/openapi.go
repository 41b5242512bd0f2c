package openapi

import (
	_ "embed" // the document is compiled into the binary
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

//go:embed openapi.json
var document []byte

// Document returns a copy of the OpenAPI document (JSON).
func Document() []byte { return slices.Clone(document) }

// Handler serves the document.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(document)
	})
}

// Operation is one documented route: an HTTP method and a path template such as
// /v1/orders/{id}.
type Operation struct {
	Method string
	Path   string
	// Public: the operation declares "security": [] and needs no credential.
	Public bool
	// Roles are the roles its "x-roles" admits; none when it declares none.
	Roles []string
	// Consumes are the media types its request body may have; none when it takes no body.
	Consumes []string
}

func (o Operation) String() string { return o.Method + " " + o.Path }

// operationMethods are the keys of a path item that name operations; the other keys
// (parameters, summary, …) describe the path.
var operationMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Operations lists every documented operation, sorted by path then method.
func Operations() ([]Operation, error) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	type operation struct {
		Security *[]json.RawMessage `json:"security"`
		Roles    []string           `json:"x-roles"`
		Body     *struct {
			Content map[string]json.RawMessage `json:"content"`
		} `json:"requestBody"`
	}
	if err := json.Unmarshal(document, &doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	var ops []Operation
	for path, item := range doc.Paths {
		for key := range item {
			if !slices.Contains(operationMethods, key) {
				continue
			}
			var op operation
			if err := json.Unmarshal(item[key], &op); err != nil {
				return nil, fmt.Errorf("openapi: %s %s: %w", key, path, err)
			}
			o := Operation{Method: strings.ToUpper(key), Path: path, Public: op.Security != nil && len(*op.Security) == 0, Roles: op.Roles}
			if op.Body != nil {
				for mediaType := range op.Body.Content {
					o.Consumes = append(o.Consumes, mediaType)
				}
				slices.Sort(o.Consumes)
			}
			ops = append(ops, o)
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return ops, nil
}
