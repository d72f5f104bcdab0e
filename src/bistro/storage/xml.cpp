#include "bistro/storage/xml.hpp"

#include <cstdint>

namespace bistro {

std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view name) {
  std::vector<std::string_view> out;
  std::string open = "<", close = "</";
  open.append(name);
  close.append(name);
  close.push_back('>');
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    const size_t after = pos + open.size();
    if (after >= xml.size()) break;
    const char c = xml[after];
    if (c != '>' && c != ' ' && c != '/' && c != '\t' && c != '\n' && c != '\r') {
      pos = after;  // a longer name with this prefix
      continue;
    }
    const size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) break;
    if (xml[gt - 1] == '/') {  // <name/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    const size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

std::optional<std::string> xml_text(std::string_view xml, std::string_view name) {
  const auto all = xml_elements(xml, name);
  if (all.empty()) return std::nullopt;
  return xml_decode(all.front());
}

std::string xml_decode(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != '&') {
      out += t[i];
      continue;
    }
    const size_t semi = t.find(';', i);
    if (semi == std::string_view::npos || semi - i > 12) {
      out += t[i];
      continue;
    }
    const auto ent = t.substr(i + 1, semi - i - 1);
    std::string rep;
    if (ent == "amp")
      rep = "&";
    else if (ent == "lt")
      rep = "<";
    else if (ent == "gt")
      rep = ">";
    else if (ent == "quot")
      rep = "\"";
    else if (ent == "apos")
      rep = "'";
    else if (ent.size() >= 2 && ent[0] == '#') {
      uint32_t cp = 0;
      bool ok = true;
      const bool hex = ent[1] == 'x' || ent[1] == 'X';
      for (size_t k = hex ? 2 : 1; k < ent.size() && ok; ++k) {
        const char c = ent[k];
        int d = -1;
        if (c >= '0' && c <= '9')
          d = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
          d = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
          d = c - 'A' + 10;
        if (d < 0 || cp > 0x10FFFF)
          ok = false;
        else
          cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      }
      ok = ok && ent.size() > (hex ? 2u : 1u) && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
      if (ok) {  // UTF-8 encode
        if (cp < 0x80) {
          rep += static_cast<char>(cp);
        } else if (cp < 0x800) {
          rep += static_cast<char>(0xC0 | (cp >> 6));
          rep += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          rep += static_cast<char>(0xE0 | (cp >> 12));
          rep += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          rep += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
          rep += static_cast<char>(0xF0 | (cp >> 18));
          rep += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
          rep += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          rep += static_cast<char>(0x80 | (cp & 0x3F));
        }
      }
    }
    if (rep.empty()) {
      out += t[i];
      continue;
    }
    out += rep;
    i = semi;
  }
  return out;
}

}  // namespace bistro
