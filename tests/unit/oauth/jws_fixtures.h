/*
 * jws_fixtures.h - keys for tests/unit/oauth/test_jws.c.
 *
 * RSA_PKCS1 / RSA_PKCS8 are the RSA key of RFC 7515 appendix A.2 and
 * EC_SEC1 / EC_PKCS8 the P-256 key of appendix A.3, re-encoded as PEM
 * (Python cryptography, from the RFC's JWK members); RSA_PUBLIC and
 * RSA_ENCRYPTED are the same RSA key as a public key and as an encrypted
 * PKCS#8 key. EC_P384 and RSA_1024 are throwaway keys made for the tests
 * only (refused: wrong curve, too small). RSA_OPENSSL is a throwaway
 * 2048-bit key from `openssl genpkey` (PKCS#8, e = 65537) for which
 * BearSSL 0.6's br_rsa_compute_pubexp returns 0, as it does for most such
 * keys. None of them protects anything.
 */
#ifndef GRANTD_TESTS_JWS_FIXTURES_H
#define GRANTD_TESTS_JWS_FIXTURES_H

static const char RSA_PKCS1[] = "-----BEGIN RSA PRIVATE KEY-----\n"
                                "MIIEowIBAAKCAQEAofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd/wWJcyQoTbji9k0\n"
                                "l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL+yRT+SFd2lZS+pC\n"
                                "gNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb/7OMg0LOL+bSf63kpaSHSX\n"
                                "ndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uD\n"
                                "Zlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxXFvUK+DWNmoudF8NAco9/h9iaGNj8\n"
                                "q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQIDAQABAoIBABKucaRpzQorw35S\n"
                                "bEUAVx8dYXUdZOlJcHtiWQ+dC6V8ljxAHj/PLyzTveyI5QO/xkObCyjIL303l2cf\n"
                                "UhPu2MFaJdjVzqACXuOrLot/eSFvxjvqVidTtAZExqFRJ9mylUVAoLvhowVWmC1O\n"
                                "n95fZCXxTUtxNEG1Xcc7m0rtzJKs45J+N/V9DP1edYH6USyPSWGp6wuA+KgHRnKK\n"
                                "Vf9GRx80JQY7nVNkL17eHoTWEwga+lwi0FEoW9Y7lDtWXYmKBWhUE+U8PGxlJf8f\n"
                                "40493HDw1WRQ/aSLoS4QTp3rn7gYgeHEvfJdkkf0UMhlknlo53M09EFPdadQ4TlU\n"
                                "bjqKc50CgYEA4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH/5IB3jw3bcxGn6QLvnE\n"
                                "tfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw/Py5PJdTJNPY8cQn7ouZ2KKDcmnPG\n"
                                "BY5t7yLc1QlQ5xHdwW1VhvKn+nXqhJTBgIPgtldC+KDV5z+y2XDwGUcCgYEAuQPE\n"
                                "fgmVtjL0Uyyx88GZFF1fOunH3+7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYs\n"
                                "p1ZSe7zFYHj7C6ul7TjeLQeZD/YwD66t62wDmpe/HlB+TnBA+njbglfIsRLtXlnD\n"
                                "zQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdcCgYAHAp9XcCSrn8wVkMVkKdb7\n"
                                "DOX4IKjzdahm+ctDAJN4O/y7OW5FKebvUjdAIt2GuoTZ71iTG+7F0F+lP88jtjP4\n"
                                "U4qe7VHoewl4MKOfXZKTe+YCS1XbNvfgwJ3Ltyl1OH9hWvu2yza7q+d5PCsDzqtm\n"
                                "27kxuvULVeya+TEdAB1ijQKBgQCH/3r6YrVH/uCWGy6bzV1nGNOdjKc9tmkfOJmN\n"
                                "54dxdixdpozCQ6U4OxZrsj3FcOhHBsqAHvX2uuYjagqvo3cOj1TRqNocX40omfCC\n"
                                "Mx3bD1yPPf/6TI2XECva/ggqEY2mYzmIiA5LVVmc5nrybr+lssFKneeyxN2Wq93S\n"
                                "0iJMdQKBgCGHewxzoa1r8ZMD0LETNrToK423K377UCYqXfg5XMclbrjPbEC3YI1Z\n"
                                "NqMtuhdBJqUnBi6tjKMF+34Xf0CUN8ncuXGO2CAYvO8PdyCixHX52ybaDjy1FtCE\n"
                                "6yUXjoKNXKvUm7MWGsAYH6f4IegOetN5NvmUMFStCSkh7ixZLkN1\n"
                                "-----END RSA PRIVATE KEY-----\n";

static const char RSA_PKCS8[] = "-----BEGIN PRIVATE KEY-----\n"
                                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCh+BYK4uPJtGXO\n"
                                "jS1lYmM2K5J9vinh8CR3/BYlzJChNuOL2TSXxbbqY913EeZ8dCn5VrD7io8ImtxL\n"
                                "aYk8wTM/U+3QGbh3hCUv7JFP5IV3aVlL6kKA0ywPVb9ilE8TA5a8bpvfbr3SvaNn\n"
                                "juygxmj3AbONv/s4yDQs4v5tJ/reSlpIdJed1LnPmt7Ex1sFhSwsD174pcF1A5L5\n"
                                "ROjtZMEQxrZHYJqkeDrrnGya11UxMFBji4NmXG9veoKjlnAqH2QbgtPr8jkiGUkf\n"
                                "toaHLFcW9Qr4NY2ai50Xw0Byj3+H2JoY2PyrZ62EWQwuz3WTOTY8BwNNb2BvniHg\n"
                                "VFbK5emhAgMBAAECggEAEq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyW\n"
                                "PEAeP88vLNO97IjlA7/GQ5sLKMgvfTeXZx9SE+7YwVol2NXOoAJe46sui395IW/G\n"
                                "O+pWJ1O0BkTGoVEn2bKVRUCgu+GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzj\n"
                                "kn439X0M/V51gfpRLI9JYanrC4D4qAdGcopV/0ZHHzQlBjudU2QvXt4ehNYTCBr6\n"
                                "XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl/x/jTj3ccPDVZFD9pIuhLhBOneufuBiB\n"
                                "4cS98l2SR/RQyGWSeWjnczT0QU91p1DhOVRuOopznQKBgQDgHMQQ60imZV1URk0K\n"
                                "pLttoLhyt3SmqdEf/kgHePDdtzEafpAu+cS191R2JiuoF2yzWXnwFDcqGigp5BNr\n"
                                "0AHQfD8/Lk8l1Mk09jxxCfui5nYooNyac8YFjm3vItzVCVDnEd3BbVWG8qf6deqE\n"
                                "lMGAg+C2V0L4oNXnP7LZcPAZRwKBgQC5A8R+CZW2MvRTLLHzwZkUXV866cff7tx6\n"
                                "kqa0finGG0KgeqlaZPxgCZnFp7AeAcCMtiynVlJ7vMVgePsLq6XtON4tB5kP9jAP\n"
                                "rq3rbAOal78eUH5OcED6eNuCV8ixEu1eWcPNCS/l1OW1EnXUEoEHKl54Xrrz2uNw\n"
                                "kgMTP1FZ1wKBgAcCn1dwJKufzBWQxWQp1vsM5fggqPN1qGb5y0MAk3g7/Ls5bkUp\n"
                                "5u9SN0Ai3Ya6hNnvWJMb7sXQX6U/zyO2M/hTip7tUeh7CXgwo59dkpN75gJLVds2\n"
                                "9+DAncu3KXU4f2Fa+7bLNrur53k8KwPOq2bbuTG69QtV7Jr5MR0AHWKNAoGBAIf/\n"
                                "evpitUf+4JYbLpvNXWcY052Mpz22aR84mY3nh3F2LF2mjMJDpTg7FmuyPcVw6EcG\n"
                                "yoAe9fa65iNqCq+jdw6PVNGo2hxfjSiZ8IIzHdsPXI89//pMjZcQK9r+CCoRjaZj\n"
                                "OYiIDktVWZzmevJuv6WywUqd57LE3Zar3dLSIkx1AoGAIYd7DHOhrWvxkwPQsRM2\n"
                                "tOgrjbcrfvtQJipd+DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd/QJQ3\n"
                                "ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp/gh6A56\n"
                                "03k2+ZQwVK0JKSHuLFkuQ3U=\n"
                                "-----END PRIVATE KEY-----\n";

static const char RSA_PUBLIC[] =
  "-----BEGIN PUBLIC KEY-----\n"
  "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj\n"
  "NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz\n"
  "P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo\n"
  "9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB\n"
  "EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX\n"
  "FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp\n"
  "oQIDAQAB\n"
  "-----END PUBLIC KEY-----\n";

static const char RSA_ENCRYPTED[] =
  "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
  "MIIFNTBfBgkqhkiG9w0BBQ0wUjAxBgkqhkiG9w0BBQwwJAQQ/KrKQEdcyDJvFxS7\n"
  "WBlTIwICCAAwDAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEImIVIf1uMomb4DX\n"
  "cfzpghgEggTQR4/sQnge83iqrtJ91kOndEstwaFbjEFW59xUsuvQI6ap7XORH96m\n"
  "0wWiPM1D988glyrnpNKlrOcKNqp2q6Fp+9FNLIek7umx60dc6tiFbo7cxCS1Val/\n"
  "Gm1AQkEqMZOGAkzZdwR1nkkgbn7vpXuAmURLMIUWNYjOHRMeg58/HQTYyMpwpN8g\n"
  "nKgm11kXFWdXpHBN/lJFvc4Yg4+VrKIbHLnmUATaAn15K+bzGXdMgmF8ljP1JcKj\n"
  "ag8ROpM+jGbUO9HPsnTxITqVCT+NpZFfgGLf8Juhc9Ex+hLCSYrbdZ32FjkYYvzV\n"
  "z7wj9pWzOtlC7bRlBtLV+0Plp8cbHAEOeRTt3LjL52yQqooHVbK1tzzEYExh7oVY\n"
  "imQvppXFsYiVVo+Z+Pq+uLYHG/e/8eUj2yB2HycaMPyvFXt+bzwqH8w9iJvT3HM4\n"
  "T2qL5bmyUqcYmwelZvm74JTZUkZUOk3GdAkothxbE0bxpCbjUkp8ocn47J4Y1YkN\n"
  "J2OeMekEsEWwosV1BMUtUCyE3tekG8Xc85QFV4OpVq0LNmjb1OsOd5WcFkaGDd0h\n"
  "obbfLwctXLDllVbwUq5tsakOFToZw735yxj0p+Ttg029aWTcy7/4mhz/RrjZ1Lcd\n"
  "k/kZkf9zmwpFHTDPYZ2ZvqjEpRtQ8VCrx5L5waxt83fsOGF/eKDMm0U+sBvkqcbI\n"
  "o+znuqRqJOf/f8bNHZsKfkQ4/qvMIhmMweHMD8qhqAySZCpJXAK18YuBRZoHLVn/\n"
  "1BkF/jOWhd9QNA74zYfU1/l6FlI2h/6KEJK4MqpPAEwVM5bTFNW+NmGVxgpM+/5Q\n"
  "PDgtBmeQhCwt+qDTAx3myjDHufsYRMMOEQEEHpo0Bt99anA8Ey2c6hq0lyxx91Rt\n"
  "GB3KOla/lndios84wx8HRGTR+6OHeL/egtHFLPQrHDZgEtiKXFO/YU/SBPcnRuCH\n"
  "VEyL5mzaXozae4V4LefGFlKBE1p2H7H5voOCFYLAjAvCO989+V05E1/GT0XJ3gpE\n"
  "mRaknvMrhODOobOwlhnlBgCktpqMY+HZWI3T5seGlhsocO6Zw+9VU+WHixHiXokG\n"
  "q4rK1b0hA0rz/XFaffBwfJKtOhYWTDETVL7ZjXxed2k2zN7/tESzSVlkv3pI3wM9\n"
  "r2TkS0m1X62GNGjdsCWnKWpVzLOkx6JA9QAbgj7eOh2g+0dWaLiuyab9570Fikpx\n"
  "od83Zsd97V5XC40ffBucZ6vZQq+HhQGdc+mXwtPT1i8cNbkiBhIIF1XhI9TJGobp\n"
  "x90guYv4mDlF005d3x2qHaJyfYO5at2YIEjGRQDAsw0H6I5uFWeWqxDaFb3Z7jsf\n"
  "xVKrQCB2xbawDoQ1Sje8r9aYDhXlD08rWUFRK6sRNv3ZcFRdUpdh50j3dYc/NClJ\n"
  "xN0xz+eFyoBwTmjKrtGZmGj/EANTqArTN9vFKkx0SOYAu9UaSwiFb6JwuogceG+M\n"
  "xF+B2FMBZJuArY5HK6GbTCsXgR0SuJ/E3UdJGyLwmC9JxhHa+u0/NQCtcnB0oGaz\n"
  "nizJtHtWbgUEBJdIjBzs1Jrqxc+Pq3/OgSNSiS2fmB3R4mUCYa5mZ6+Ve0J+MSlF\n"
  "wCEE9Z6Adl1R8fhnKUfR3pHz+Cqjp6uHzCa7b/S2yRef0b8YXE/Hk/0=\n"
  "-----END ENCRYPTED PRIVATE KEY-----\n";

static const char EC_SEC1[] = "-----BEGIN EC PRIVATE KEY-----\n"
                              "MHcCAQEEII6bEJ5xkJi/mASH3x9dd+nLKWBuvtImO19XwhPfhPSyoAoGCCqGSM49\n"
                              "AwEHoUQDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEXH8UTNG72b\n"
                              "focs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
                              "-----END EC PRIVATE KEY-----\n";

static const char EC_PKCS8[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIff\n"
                               "H1136cspYG6+0iY7X1fCE9+E9LKhRANCAAR/zc4ncPbEXUGDy+5v20t7WAczNXvp\n"
                               "7xO6z248e9FURcfxRM0bvZt+hyzf7bnuufSzaV1uqQskrYpGIyiFiOWt\n"
                               "-----END PRIVATE KEY-----\n";

static const char EC_P384[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDTVBNN9ppEAE0nN0TL\n"
                              "nfwbMKViPp8iKYnbq65Xt2UJ5KkvapDOKJ82sXNE5cevIeGhZANiAASSDDsyDWM2\n"
                              "afY1hSV8m5vg0jahtAZW+JJlUXClixmZ7ZL/aorYJO+IZFjxl2w99Kg/8wdQI/hk\n"
                              "uGelZ2JJ1uzgWJ0hRa84nUiQvKcFkhcuCyxsWipybsAjFio/DWCExhs=\n"
                              "-----END PRIVATE KEY-----\n";

static const char RSA_1024[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBANHBkVPARwTkY7nf\n"
                               "Hz5RKZ2swoQSKCeqIm9+Whg4c5Mzq0U44b9XxieRY4zxAeWxnqIgftNz5X/PYww0\n"
                               "j6P2y7AeKMaCKJrT1Mb+Hffobi6AALFGKEuRE5eQUWr79K0SlccKzzW6fEZJyAZ+\n"
                               "JKnGwmRJ6mo2Glim/vUWUAH0+3JzAgMBAAECgYEAgV0zZwbIBjFhfAoq98EQvIkG\n"
                               "8nNMRqI8WK0Bnbx7M0cDk06wk9Trhg256vvc4q+4GV+XOIxa94eNG8Ly7/nOxrKi\n"
                               "j4pgK9vaF1dj8x9v0Z7PDbHyOTMumoPIQiEtmYat3teM0KmkpTLA4VK1SiO6lxou\n"
                               "D+lHAY2IT4wwdfqHoEkCQQD0nIxWgAZUdkAuzKQIg/RvLlAGKzeDsmMKxxfpVs29\n"
                               "fOEtS4JooDoZYc+YABUPpE29tH94VltNFq8i4km86ox3AkEA24WWpG4zh3Un0Itp\n"
                               "C65NwmgpSsgaS3AnjeB5tiqBub4r3Lf1RooUFah4Z33Cfq4XVARzVklvO7WVoaX8\n"
                               "moGU5QJAaRnmlrgVgC767uDQzjPcT/UnPy9MgBKiyZu343N/nR5OJkcedlP6ArPr\n"
                               "HZVTd1AScyNd7de1DQ9lGuj94+UniwJBAJ95StilXjXXvFbaEDP2KnNCrEyxVbjb\n"
                               "/0AohQL7mkZPixnLYhoekTyyqNW2HKde3X+hxBA5RN+BqPRH21x7KqkCQQCcmvjY\n"
                               "qNIwiwENsrRkijauYnBuSu7aGmbsoTpRNh6W1lisXojX5Ta51cJZ0VUtrTdL6y2h\n"
                               "BNXDET8n8bgpWgmN\n"
                               "-----END PRIVATE KEY-----\n";

static const char EC_PARAMS[] = "-----BEGIN EC PARAMETERS-----\n"
                                "BggqhkjOPQMBBw==\n"
                                "-----END EC PARAMETERS-----\n";

static const char RSA_OPENSSL[] =
  "-----BEGIN PRIVATE KEY-----\n"
  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDM0L3Q8KIxhWAM\n"
  "7N6qbhgbvz4ZeS1OnLxpKdmrJ0kqyVxrIUri6+Rozoq1RjEDqGwJBX1uUXDajt8N\n"
  "fsn8icmb046X3KUOo0NvwZH365BJ41jkXN5xK53XIzPdV8UlHyq2J1TtMDmyU1Ks\n"
  "b1/nx7LXT4KJH3X9fS/YDQS6gHyPh8E3OVpt6gEX+2DvHXUob/lRE/ApZP9NRYF6\n"
  "dqJYPFubXuTqAcKj2LjMmEMoExofPI/Y6Uk0VTgE60N3L6FFWcItEYAdaMyYYmpu\n"
  "CFeCb86yOotwP+yhJYqG0Y9P4wO3b7Pnzlu0+EzfcpjULDokdXyQ+JHDJ7Yi5XAS\n"
  "aKaaAJmXAgMBAAECggEAYR0W67O1jBqMHQTRXWk/WCS5SrXI1E4ADjMwSPWjPTzl\n"
  "68wI6IjmMAXDAknqYqwgsbRfMYg/JPp6a7kzB+HDbPYGVh5iSwsBpkNXtYCF1WsN\n"
  "kpYwSOPf/wrrhCeiTEQ3adBDdgWYTeQxPp6+kDWBqJLEN8VpmkyZ+2zM0aurpBfm\n"
  "zwwMb77gUZVHlRvUvPvJ19mvYljF/6I1V3OngMw8rAC8c26mDq14P9nIuZFBbEZ+\n"
  "/Nnbz3yBRu/UvIkBCnEyq9aRLW/FUekUEtGxleB9pmL2p3AHME+A8sxQDVMATfG2\n"
  "SbPS5g9iAhaPe/4ue56KSPShWtq79HCUao3CHmLV0QKBgQDnAVrA6XfkA/tGSDqn\n"
  "wE6mMeMBnSLR3W+xST9qxZfKgqXfswNfna622zquDCr2PHrThFGDZeWj+K/RW6FU\n"
  "VWIKQpGepcTEFA702gUeNkH4oQf7mlSFzQV7slSBe6pskbe4zEhRptshT13NpHq/\n"
  "Q5ngQDRJuDb2Fi5oIu/JLeiTRwKBgQDi+fMeAcFk3eDYxXq98e+AR1xWWpjRBVAO\n"
  "lVwuu8p++ojMTbGEANeJ/bTJumDUswVUFrulFuJ6tzEa87awIXLmcPqhegFsnD8k\n"
  "09lFb6LLbbAFpuG0RhVlPiq0nqry59UqypLOyS+pD4jtjUINs86ERJ2w2Z8Ol4Rh\n"
  "E5VICmrPMQKBgGMeGaqcgmy7qJ1HcKN5yEVXMmgG3GHf+YTAQQ23KqIh3LpXPSNR\n"
  "rR2Yg10aq3RsDuei5rbSie4JTqcuAdMFr8NnPMQtrHfVg3Vb9sY30aa0sZArcAjZ\n"
  "J3kj006bmUxsWcBZJs6iIXPxcfZClMhsYSHvaoAXIr4EVnUoSGqx4BERAoGAcC5H\n"
  "SbJmajr7cUgRRSX5UHZ0nb2DP/OXQM3zVKm+CIo86HUR4oMkBHCfVQDH8PhWDtx5\n"
  "e7vWzf4SyBZiWaT+jASU6xBI+ewzjTkjbp0hYdfhorl7XkUxN+vE4aZ2KT4J7m9W\n"
  "pdtrsewaqgYh+nG/BUKAibLVWTnr1KsAIi374lECgYEAiriThwMKQHtP/LfQRkma\n"
  "TuMOM7/SF+wedM6QtPzia7Wn1hREe8qh3o5P4KRJnrc18G3FP9h6A6Gqaz2z5FSG\n"
  "ChcNILVxIj7U38MrV/2/eO/+gMpDaTh4zoULmroKohDomuWtuTlP0Nx2gs9taOVs\n"
  "YCNLAEQF0BnvSjU7+znIcGI=\n"
  "-----END PRIVATE KEY-----\n";

#endif
