// OpenSSL's libcrypto as Debian's libssl-dev ships it: digests, PBKDF2 and AES-GCM through EVP.
#include <openssl/evp.h>
#include <openssl/crypto.h>
