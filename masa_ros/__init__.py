# The installed package directory holds the generated messages (masa_ros.msg); let it extend this one
# when the source tree comes first on sys.path (tests run from the repository root).
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
