# What settle's own tests, benchmarks and examples build with. Nothing here
# reaches a consumer: the settle target itself carries no flags.

# settle::dev: the library plus our warnings, as errors.
add_library(settle_dev INTERFACE)
add_library(settle::dev ALIAS settle_dev)
target_link_libraries(settle_dev INTERFACE settle::settle)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(settle_dev INTERFACE -Wall -Wextra -Wpedantic -Werror -Wconversion
                                              -Wshadow)
elseif(MSVC)
  target_compile_options(settle_dev INTERFACE /W4 /WX /permissive-)
endif()
