# Writes OUT: a C++ file defining `std::string_view FUNC()` that returns the text of IN.
# The length comes from the array's size: a constexpr strlen over a long text exceeds the compiler's
# constexpr loop limit.
# Invoked at build time with -DIN=... -DOUT=... -DFUNC=... -DNS=...
file(READ "${IN}" text)
set(body "// Generated from ${NAME} by cmake/embed_text.cmake. Do not edit.\n#include <string_view>\n\n")
string(APPEND body "namespace ${NS} {\nstd::string_view ${FUNC}() {\n  static constexpr char text[] = R\"cptext(${text})cptext\";\n  return {text, sizeof(text) - 1};\n}\n}  // namespace ${NS}\n")
file(WRITE "${OUT}.tmp" "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
