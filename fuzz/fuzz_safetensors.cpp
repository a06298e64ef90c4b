// fuzz/fuzz_safetensors.cpp: libFuzzer target for the safetensors reader (model/safetensors.h).
//
// Each input is written to a scratch file and given to read_safetensors(path). Allowed outcomes:
// an Error, or a file whose contents satisfy what the reader promises:
//   - names are in file order and each names exactly one tensor;
//   - the tensors' bytes add up to the data region (they tile it exactly);
//   - writing the tensors and metadata back with write_safetensors and reading that again gives
//     the same names, dtypes, shapes, bytes and metadata (reader and writer agree).
#include <cstring>

#include "fuzz/fuzz_common.h"
#include "model/safetensors.h"

using swiattn_fuzz::finding;

namespace {

void check_same(const swiattn::SafetensorsFile& a, const swiattn::SafetensorsFile& b) {
  if (a.names != b.names) finding("round trip changed the tensor names or their order");
  if (a.metadata != b.metadata) finding("round trip changed __metadata__");
  for (const std::string& name : a.names) {
    const swiattn::Tensor& x = a.tensors.at(name);
    const swiattn::Tensor& y = b.tensors.at(name);
    if (x.dtype() != y.dtype() || x.shape() != y.shape() || x.nbytes() != y.nbytes())
      finding("round trip changed the dtype or shape of " + name);
    if (x.nbytes() && std::memcmp(x.raw(), y.raw(), x.nbytes()) != 0)
      finding("round trip changed the bytes of " + name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string input_path = swiattn_fuzz::scratch_path(".safetensors");
  static const std::string copy_path = swiattn_fuzz::scratch_path("-copy.safetensors");
  swiattn_fuzz::write_bytes(input_path, data, size);

  swiattn::SafetensorsFile file;
  try {
    file = swiattn::read_safetensors(input_path);
  } catch (const swiattn::Error&) {
    return 0;  // rejected with a message: the expected outcome for almost every input
  }

  // Accepted: check the promises.
  if (file.names.size() != file.tensors.size()) finding("names and tensors disagree in number");
  uint64_t data_bytes = 0;
  for (const std::string& name : file.names) {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) finding("name without a tensor: " + name);
    data_bytes += it->second.nbytes();
  }
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i) header_bytes |= uint64_t{data[i]} << (8 * i);
  if (8 + header_bytes + data_bytes != size) finding("accepted tensors do not tile the data region");

  std::vector<std::pair<std::string, swiattn::Tensor>> tensors;
  for (const std::string& name : file.names) tensors.emplace_back(name, file.tensors.at(name));
  try {
    swiattn::write_safetensors(copy_path, tensors, file.metadata);
  } catch (const swiattn::Error& e) {
    finding(std::string("the writer refuses what the reader accepted: ") + e.what());
  }
  check_same(file, swiattn::read_safetensors(copy_path));
  return 0;
}
