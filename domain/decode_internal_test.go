package domain

import (
	stdjson "encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestEventsDecodeAsTheStandardLibraryWritesThem: the log's events are written with
// encoding/json and read with another codec; every event type, each field set,
// comes back equal.
func TestEventsDecodeAsTheStandardLibraryWritesThem(t *testing.T) {
	for eventType, decode := range decoders {
		zero, err := decode([]byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		v := reflect.New(reflect.TypeOf(zero)).Elem()
		fill(v, eventType)
		want := v.Interface().(Event)
		data, err := stdjson.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(eventType, data)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s decodes as %#v (%v)", eventType, data, got, err)
		}
	}
}

// fill sets every field of v to a value that is not its zero.
func fill(v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + name + "-é\"\\\u2028")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{0, 1, 2, 250})
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), name+"0")
		fill(v.Index(1), name+"1")
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, name+"k")
		fill(e, name+"e")
		v.SetMapIndex(k, e)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 16, 0, 0, 123456789, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), v.Type().Field(i).Name)
			}
		}
	}
}
