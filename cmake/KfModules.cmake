# Dependency direction, enforced by the compiler (see also tools/check_layers.py).
#
#   kf_module_includes(<target> <module_dir>)
#
# Gives <target> an include root that holds its own module and nothing else:
#
#   ${CMAKE_BINARY_DIR}/kf_include/<module_dir>/<module_dir>  ->  ${PROJECT_SOURCE_DIR}/<module_dir>
#
# (a symlink made at configure time) and adds ${CMAKE_BINARY_DIR}/kf_include/<module_dir> to
# the target's PUBLIC (INTERFACE, for a header-only module) include directories, so `#include "<module_dir>/foo.h"` keeps working.
# Modules link the modules below them PUBLIC, so each one sees exactly itself and the layers
# under it: `#include "proxy/worker.h"` in a tenancy file finds no such header and fails to
# compile. No target may put the repository root on an include path; this function refuses
# a module target that does (configure error).
#
# A nested <module_dir> (e.g. proxy/base) gets the root kf_include/proxy_base, holding
# proxy/base -> ${PROJECT_SOURCE_DIR}/proxy/base.
function(kf_module_includes target module_dir)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "kf_module_includes: no target ${target}")
  endif()
  string(REGEX REPLACE "/+$" "" module_dir "${module_dir}")
  set(src "${PROJECT_SOURCE_DIR}/${module_dir}")
  if(NOT IS_DIRECTORY "${src}")
    message(FATAL_ERROR "kf_module_includes(${target}): ${src} is not a directory")
  endif()

  # The repository root on a module's include path would undo the whole point.
  get_filename_component(repo_root "${PROJECT_SOURCE_DIR}" REALPATH)
  foreach(prop INCLUDE_DIRECTORIES INTERFACE_INCLUDE_DIRECTORIES)
    get_target_property(dirs ${target} ${prop})
    if(NOT dirs)
      continue()
    endif()
    foreach(dir IN LISTS dirs)
      string(REGEX REPLACE "^\\$<BUILD_INTERFACE:(.*)>$" "\\1" plain "${dir}")
      if(IS_DIRECTORY "${plain}")
        get_filename_component(plain "${plain}" REALPATH)
        if(plain STREQUAL repo_root)
          message(FATAL_ERROR "kf_module_includes(${target}): the target has the repository "
            "root (${dir}) in ${prop}; every module header would be visible. Remove it: "
            "kf_module_includes provides the module's own include root.")
        endif()
      endif()
    endforeach()
  endforeach()

  string(REPLACE "/" "_" root_name "${module_dir}")
  set(root "${CMAKE_BINARY_DIR}/kf_include/${root_name}")
  set(link "${root}/${module_dir}")
  get_filename_component(link_parent "${link}" DIRECTORY)
  file(MAKE_DIRECTORY "${link_parent}")
  set(up_to_date FALSE)
  if(IS_SYMLINK "${link}")
    file(READ_SYMLINK "${link}" current)
    if(current STREQUAL src)
      set(up_to_date TRUE)
    else()
      file(REMOVE "${link}")
    endif()
  elseif(EXISTS "${link}")
    message(FATAL_ERROR "kf_module_includes(${target}): ${link} exists and is not a symlink; "
      "remove it and re-run cmake")
  endif()
  if(NOT up_to_date)
    file(CREATE_LINK "${src}" "${link}" RESULT res SYMBOLIC)
    if(NOT res EQUAL 0)
      message(FATAL_ERROR "kf_module_includes(${target}): cannot symlink ${link} -> ${src}: ${res}")
    endif()
  endif()

  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")  # header-only module
    target_include_directories(${target} INTERFACE "$<BUILD_INTERFACE:${root}>")
  else()
    target_include_directories(${target} PUBLIC "$<BUILD_INTERFACE:${root}>")
  endif()
endfunction()
