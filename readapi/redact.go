package readapi

import (
	"encoding/json"

	"github.com/orderledger/orderledger/domain"
)

// customerPersonalFields are the fields of a customer document that hold personal data.
var customerPersonalFields = []string{"name", "email", "phone"}

func redactCustomer(body []byte) []byte {
	return domain.NullFields(body, customerPersonalFields...)
}

// redactCustomers nulls the personal data of every customer of a page.
func redactCustomers(body []byte) []byte {
	return redactEach(body, "items", func(item json.RawMessage) json.RawMessage {
		return domain.NullFields(item, customerPersonalFields...)
	})
}

// redactHistory nulls the personal fields of each event's data.
func redactHistory(body []byte) []byte {
	return redactEach(body, "events", func(event json.RawMessage) json.RawMessage {
		var e map[string]json.RawMessage
		if err := json.Unmarshal(event, &e); err != nil {
			return json.RawMessage("null")
		}
		var eventType string
		_ = json.Unmarshal(e["type"], &eventType)
		e["data"] = domain.RedactPersonalData(eventType, e["data"])
		out, err := json.Marshal(e)
		if err != nil {
			return json.RawMessage("null")
		}
		return out
	})
}

// redactEach applies redact to each element of the array under key of the object body; a
// body of another shape is withheld as null rather than passed on unread.
func redactEach(body []byte, key string, redact func(json.RawMessage) json.RawMessage) []byte {
	var object map[string]json.RawMessage
	if err := json.Unmarshal(body, &object); err != nil || object == nil {
		return []byte("null")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(object[key], &items); err != nil {
		return []byte("null")
	}
	for i := range items {
		items[i] = redact(items[i])
	}
	var err error
	if object[key], err = json.Marshal(items); err != nil {
		return []byte("null")
	}
	out, err := json.Marshal(object)
	if err != nil {
		return []byte("null")
	}
	return out
}
