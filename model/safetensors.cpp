// model/safetensors.cpp: the safetensors writer and its validating reader (format in the header).
//
// The reader's order of checks is the order of trust: the 8-byte length against the file size,
// the header's bytes (UTF-8, then JSON with duplicate keys refused), each entry's fields, then
// how the entries tile the data region. Only after all of that does it allocate tensors, and
// each allocation is bounded by bytes the file really has.
#include "model/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "io/json_reader.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian bytes; this code copies tensors byte for byte");

namespace swiattn {

using nlohmann::json;

namespace {

constexpr int kMaxHeaderNesting = 8;  // a valid header nests 3 deep: {name: {shape: [...]}}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

std::string system_reason() { return std::strerror(errno); }

// A name or value as it appears in JSON (quoted, escaped), cut short so a message stays a line.
std::string shown(const json& value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

// Index of the first byte of s that does not start a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are ill-formed), or npos if s is valid.
size_t first_invalid_utf8(const std::string& s) {
  static const uint32_t kSmallestCodePoint[5] = {0, 0, 0x80, 0x800, 0x10000};
  size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) { ++i; continue; }
    int length;
    uint32_t code_point;
    if ((lead & 0xE0) == 0xC0)      { length = 2; code_point = lead & 0x1F; }
    else if ((lead & 0xF0) == 0xE0) { length = 3; code_point = lead & 0x0F; }
    else if ((lead & 0xF8) == 0xF0) { length = 4; code_point = lead & 0x07; }
    else return i;
    if (i + length > s.size()) return i;
    for (int k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return i;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if (code_point < kSmallestCodePoint[length] || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF))
      return i;
    i += length;
  }
  return std::string::npos;
}

// A JSON integer >= 0, as u64; false for anything else (negative, fractional, non-number).
bool non_negative_integer(const json& value, uint64_t* out) {
  if (value.is_number_unsigned()) { *out = value.get<uint64_t>(); return true; }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(value.get<int64_t>());
    return true;
  }
  return false;
}

bool dtype_from_name(const std::string& name, DType* out) {
  for (DType d : {DType::F32, DType::F64, DType::BF16, DType::I32})
    if (name == safetensors_dtype_name(d)) { *out = d; return true; }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Reading: one entry of the header
// ---------------------------------------------------------------------------------------------

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // [begin, end) in the data region
};

// The header as JSON, through the project's one strict parser (io/json_reader.h): duplicate
// keys refused (a plain parser would keep the last of two tensors of the same name silently),
// nesting bounded (a valid header nests 3 deep: {name: {shape: [...]}}).
json parse_header(const std::string& text, const std::string& where) {
  return parse_json_strict(text, where + "header: ", {kSafetensorsMaxHeaderBytes, kMaxHeaderNesting});
}

Entry parse_entry(const std::string& name, const json& info, uint64_t data_bytes,
                  const std::string& where) {
  const std::string at = where + "tensor " + shown(json(name)) + ": ";
  if (!info.is_object())
    throw Error(at + "expected an object {dtype, shape, data_offsets}, got " + shown(info));
  for (const auto& [key, value] : info.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      throw Error(at + "unexpected field " + shown(json(key)) + " (expected dtype, shape, data_offsets)");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!info.contains(key)) throw Error(at + "missing field \"" + key + "\"");

  Entry entry;
  entry.name = name;
  const json& dtype = info["dtype"];
  if (!dtype.is_string() || !dtype_from_name(dtype.get<std::string>(), &entry.dtype))
    throw Error(at + "dtype must be one of \"F32\", \"F64\", \"BF16\", \"I32\", got " + shown(dtype));

  const json& shape = info["shape"];
  if (!shape.is_array())
    throw Error(at + "shape must be an array of non-negative integers, got " + shown(shape));
  uint64_t product_of_nonzero_dims = 1;  // kept <= INT64_MAX, so shape_numel never overflows
  for (const json& dim : shape) {
    uint64_t d;
    if (!non_negative_integer(dim, &d) || d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error(at + "shape must be an array of non-negative integers, got " + shown(shape));
    entry.shape.push_back(static_cast<int64_t>(d));
    if (d == 0) continue;
    if (product_of_nonzero_dims > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / d)
      throw Error(at + "shape " + shown(shape) + " has more than 2^63 - 1 elements");
    product_of_nonzero_dims *= d;
  }
  const uint64_t numel = static_cast<uint64_t>(shape_numel(entry.shape));

  const json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !non_negative_integer(offsets[0], &entry.begin) ||
      !non_negative_integer(offsets[1], &entry.end))
    throw Error(at + "data_offsets must be two non-negative integers [begin, end], got " + shown(offsets));
  if (entry.begin > entry.end)
    throw Error(at + "data_offsets " + shown(offsets) + " has begin > end");
  if (entry.end > data_bytes)
    throw Error(at + "data_offsets " + shown(offsets) + " ends beyond the data region (" +
                std::to_string(data_bytes) + " bytes)");

  // bytes == numel * size, tested without multiplying (which could overflow).
  const uint64_t bytes = entry.end - entry.begin, size = dtype_size(entry.dtype);
  if (bytes % size != 0 || bytes / size != numel)
    throw Error(at + "data_offsets " + shown(offsets) + " span " + std::to_string(bytes) +
                " bytes, but shape " + shape_str(entry.shape) + " of " + dtype.get<std::string>() +
                " needs " + (numel > std::numeric_limits<uint64_t>::max() / size
                                 ? std::string("more than 2^64")
                                 : std::to_string(numel * size)));
  return entry;
}

// The tensors must tile [0, data_bytes) exactly, in some order: no overlap, no gap, nothing
// after the last one (the reference implementation's rule). Sorts `entries` into file order.
void check_tiling(std::vector<Entry>& entries, uint64_t data_bytes, const std::string& where) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;  // every byte before this belongs to exactly one tensor
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    const auto range = [](const Entry& x) {
      return shown(json(x.name)) + " [" + std::to_string(x.begin) + ", " + std::to_string(x.end) + ")";
    };
    if (e.begin < covered)
      throw Error(where + "tensors " + range(*previous) + " and " + range(e) + " overlap");
    if (e.begin > covered)
      throw Error(where + "bytes [" + std::to_string(covered) + ", " + std::to_string(e.begin) +
                  ") of the data region belong to no tensor (a gap before " + range(e) + ")");
    covered = e.end;
    previous = &e;
  }
  if (covered != data_bytes)
    throw Error(where + "the data region has " + std::to_string(data_bytes) +
                " bytes but the tensors cover only " + std::to_string(covered));
}

void read_exactly(std::ifstream& in, uint64_t position, void* into, uint64_t bytes,
                  const std::string& where, const std::string& what) {
  in.seekg(static_cast<std::streamoff>(position));
  in.read(static_cast<char*>(into), static_cast<std::streamsize>(bytes));
  if (!in || static_cast<uint64_t>(in.gcount()) != bytes)
    throw Error(where + "could not read " + what + " (" + std::to_string(bytes) + " bytes at offset " +
                std::to_string(position) + "): file changed or unreadable");
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = "safetensors " + path + ": ";
  // ordered_json keeps insertion order: metadata first, then the tensors in the given order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) {
      if (first_invalid_utf8(key) != std::string::npos || first_invalid_utf8(value) != std::string::npos)
        throw Error(where + "metadata key or value is not valid UTF-8");
      header["__metadata__"][key] = value;
    }
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const bool utf8 = first_invalid_utf8(name) == std::string::npos;
    if (name.empty() || name == "__metadata__" || !utf8)
      throw Error(where + "invalid tensor name " + (utf8 ? shown(json(name)) : "(not UTF-8)") +
                  " (names must be non-empty UTF-8 and not __metadata__)");
    const std::string quoted_name = shown(json(name));
    if (header.contains(name)) throw Error(where + "duplicate tensor name " + quoted_name);
    if (!tensor.defined()) throw Error(where + "tensor " + quoted_name + " is undefined");
    if (tensor.device() != Device::CPU)
      throw Error(where + "tensor " + quoted_name + " is on " + device_name(tensor.device()) +
                  "; copy it to the CPU first");
    header[name] = {{"dtype", safetensors_dtype_name(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + tensor.nbytes()}}};
    offset += tensor.nbytes();
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(uint64_t{header_text.size()} >> (8 * i));
  AtomicFileWriter file(path);
  file.write(length, 8);
  file.write(header_text.data(), header_text.size());
  for (const auto& [name, tensor] : tensors)
    if (tensor.nbytes()) file.write(tensor.raw(), tensor.nbytes());
  file.commit();
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string where = "safetensors " + path + ": ";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(where + "is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(where + "cannot open (" + system_reason() + ")");
  in.seekg(0, std::ios::end);
  const auto end_position = in.tellg();
  if (end_position < 0) throw Error(where + "cannot determine the file size");
  const uint64_t file_bytes = static_cast<uint64_t>(end_position);

  // 1. The header length.
  if (file_bytes < 8)
    throw Error(where + "file has " + std::to_string(file_bytes) +
                " bytes, too short for the 8-byte header length");
  unsigned char length_bytes[8];
  read_exactly(in, 0, length_bytes, 8, where, "the header length");
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i) header_bytes |= uint64_t{length_bytes[i]} << (8 * i);
  if (header_bytes > file_bytes - 8)
    throw Error(where + "header length " + std::to_string(header_bytes) + " exceeds the " +
                std::to_string(file_bytes - 8) +
                " bytes after the length field (truncated, or not a safetensors file)");
  if (header_bytes > kSafetensorsMaxHeaderBytes)
    throw Error(where + "header length " + std::to_string(header_bytes) + " exceeds the limit of " +
                std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  if (header_bytes == 0) throw Error(where + "header length is 0, expected a JSON object");

  // 2. The header's bytes: UTF-8, JSON, an object.
  std::string header_text(header_bytes, '\0');
  read_exactly(in, 8, header_text.data(), header_bytes, where, "the header");
  const size_t bad_byte = first_invalid_utf8(header_text);
  if (bad_byte != std::string::npos)
    throw Error(where + "header is not valid UTF-8 (byte " + std::to_string(bad_byte) + " of the header)");
  const json header = parse_header(header_text, where);
  if (!header.is_object())
    throw Error(where + "header must be a JSON object, got " + header.type_name());

  // 3. Each entry, then how they tile the data region.
  const uint64_t data_start = 8 + header_bytes, data_bytes = file_bytes - data_start;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name != "__metadata__") {
      // The same rule as the writer: a file we accept can always be written back.
      if (name.empty()) throw Error(where + "empty tensor name (names must be non-empty)");
      entries.push_back(parse_entry(name, info, data_bytes, where));
      continue;
    }
    if (!info.is_object())
      throw Error(where + "__metadata__ must be an object of strings, got " + shown(info));
    for (const auto& [key, value] : info.items()) {
      if (!value.is_string())
        throw Error(where + "__metadata__." + key + " must be a string, got " + shown(value));
      file.metadata[key] = value.get<std::string>();
    }
  }
  check_tiling(entries, data_bytes, where);

  // 4. Only now allocate: every tensor's size was checked against bytes the file holds.
  for (const Entry& e : entries) {
    Tensor tensor = Tensor::empty(e.shape, e.dtype);
    if (tensor.nbytes())
      read_exactly(in, data_start + e.begin, tensor.raw(), tensor.nbytes(), where,
                   "tensor " + shown(json(e.name)));
    file.names.push_back(e.name);
    file.tensors.emplace(e.name, tensor);
  }
  return file;
}

}  // namespace swiattn
