#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>

#include "streams/internal/node.h"

namespace streams::internal {
namespace {

void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
}

}  // namespace

std::string TypeName(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  std::string name = (status == 0 && demangled) ? std::string(demangled.get()) : type.name();
  // libstdc++ spells std::string through its inline ABI namespace and default
  // template arguments; print the names people write.
  ReplaceAll(name, "std::__cxx11::", "std::");
  ReplaceAll(name, "std::basic_string<char, std::char_traits<char>, std::allocator<char> >",
             "std::string");
  ReplaceAll(name, "std::basic_string_view<char, std::char_traits<char> >", "std::string_view");
  // The demangler separates '>' characters with a space; a replacement above may
  // leave "std::string >", which reads better as "std::string>".
  for (size_t pos = name.find(" >"); pos != std::string::npos; pos = name.find(" >", pos + 1)) {
    if (pos > 0 && name[pos - 1] != '>') name.erase(pos, 1);
  }
  return name;
}

}  // namespace streams::internal
