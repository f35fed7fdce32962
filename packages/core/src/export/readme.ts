/**
 * README.txt of an export, in English then French: what is inside, where it comes from, the counts,
 * how to check it and how to import it (Dovecot or any Maildir server, Thunderbird and mutt with mbox,
 * imapsync or an IMAP replay). Written for the person who receives the archive, not for mailark.
 */
import type { ExportCounts, ExportInfo } from './manifest.js';

export function readmeText(info: ExportInfo, c: ExportCounts): string {
  const formats = info.formats.map((f) => ({ maildir: 'Maildir', mbox: 'mbox', eml: 'EML' })[f]).join(', ');
  const has = (f: string) => info.formats.includes(f as never);
  const o = info.origin;
  const fromEn =
    o.kind === 'snapshot'
      ? `backup snapshot ${o.snapshotId} taken ${o.time}${o.repository ? ` (repository ${o.repository})` : ''}`
      : `the IMAP server ${o.server}, read ${o.time}`;
  const fromFr =
    o.kind === 'snapshot'
      ? `de la sauvegarde ${o.snapshotId} du ${o.time}${o.repository ? ` (dépôt ${o.repository})` : ''}`
      : `du serveur IMAP ${o.server}, lu le ${o.time}`;
  const t = info.tenant;
  const en = [
    `mailark export of ${t}`,
    '='.repeat(`mailark export of ${t}`.length),
    '',
    `Made ${info.created} by mailark${info.toolVersion ? ` ${info.toolVersion}` : ''} from ${fromEn}.`,
    `${c.users} mailboxes, ${c.folders} folders, ${c.messages} messages (${c.bytes} bytes of mail), as ${formats}.`,
    '',
    'Contents',
    '--------',
    ...(has('maildir')
      ? [
          `${t}/<user>/Maildir/          Maildir++: INBOX at the root, other folders in .Folder.Sub/ (names in`,
          '                              modified UTF-7), one file per message in cur/ named',
          '                              <time>.U<uid>.mailark,S=<size>:2,<flags>; the file time is the',
          "                              message's internal date; dovecot-keywords, dovecot-uidlist, subscriptions",
        ]
      : []),
    ...(has('mbox') ? [`${t}/<user>/mbox/<folder>.mbox one mboxrd file per folder`] : []),
    ...(has('eml') ? [`${t}/<user>/eml/<folder>/<uid>.eml one file per message, its exact bytes`] : []),
    'manifest.jsonl               one line per message: user, folder (Unicode, and as the server names it),',
    '                             UID, flags, keywords, internal date, size, SHA-256, paths in this export',
    'folders.jsonl                one line per folder (attributes, special use, subscription, counts)',
    'export.json                  these facts, as JSON',
    'SHA256SUMS                   the SHA-256 of every other file',
    '',
    'Checking',
    '--------',
    'After unpacking:   sha256sum -c SHA256SUMS      (every line must say OK)',
    'Against the backup: mailark verify-export <this archive or directory> -r <repository>',
    '',
    'Importing',
    '---------',
    "* Dovecot, or any Maildir server (Courier...): copy <user>/Maildir to the user's mail location",
    '  (mail_location = maildir:~/Maildir), owned by the mail user (chown -R vmail:vmail). Flags,',
    '  keywords, internal dates, UIDs, UIDVALIDITY and subscriptions are kept. A folder whose name',
    '  contains "." is written with Dovecot\'s listescape escaping ("." as \\2e): enable the plugin with',
    '  mail_plugins = $mail_plugins listescape.',
    '* Thunderbird: with the ImportExportTools NG add-on, "Import mbox file", one .mbox per folder.',
    '  mutt/neomutt: mutt -f <folder>.mbox',
    '* Any IMAP server: serve the Maildir tree with Dovecot and copy with imapsync, or APPEND each',
    '  .eml file with the flags and internal date that manifest.jsonl gives for it.',
    '* mbox files are mboxrd: each message follows a "From <sender> <date>" line and is followed by one',
    '  empty line; any line starting with ">...From " got one more ">" (remove one to recover it). A',
    '  message that did not end with a line break gets one: "size" in manifest.jsonl is its exact length.',
    ...(info.options.mboxStatusHeaders
      ? [
          '  In this export each mbox message starts with three added lines, Status:, X-Status: and',
          '  X-Keywords: (its flags); the exact message is what follows them.',
        ]
      : []),
    '* Folder and file names outside Maildir are Unicode; characters that file systems refuse are',
    '  written %XX (UTF-8 bytes in hex).',
  ];
  const fr = [
    `Export mailark de ${t}`,
    '='.repeat(`Export mailark de ${t}`.length),
    '',
    `Produit le ${info.created} par mailark${info.toolVersion ? ` ${info.toolVersion}` : ''} à partir ${fromFr}.`,
    `${c.users} boîtes, ${c.folders} dossiers, ${c.messages} messages (${c.bytes} octets de courrier), en ${formats}.`,
    '',
    'Contenu',
    '-------',
    ...(has('maildir')
      ? [
          `${t}/<utilisateur>/Maildir/   Maildir++ : INBOX à la racine, les autres dossiers dans .Dossier.Sous/`,
          '                              (noms en UTF-7 modifié), un fichier par message dans cur/ ; la date du',
          '                              fichier est la date interne du message ; dovecot-keywords,',
          '                              dovecot-uidlist, subscriptions',
        ]
      : []),
    ...(has('mbox') ? [`${t}/<utilisateur>/mbox/<dossier>.mbox  un fichier mboxrd par dossier`] : []),
    ...(has('eml')
      ? [`${t}/<utilisateur>/eml/<dossier>/<uid>.eml  un fichier par message, octet pour octet`]
      : []),
    'manifest.jsonl               une ligne par message : utilisateur, dossier (Unicode et tel que le serveur',
    '                             le nomme), UID, drapeaux, mots-clés, date interne, taille, SHA-256, chemins',
    'folders.jsonl                une ligne par dossier',
    'export.json                  ces informations, en JSON',
    'SHA256SUMS                   le SHA-256 de chacun des autres fichiers',
    '',
    'Vérifier',
    '--------',
    'Après extraction :          sha256sum -c SHA256SUMS      (chaque ligne doit indiquer OK)',
    'Par rapport à la sauvegarde : mailark verify-export <archive ou répertoire> -r <dépôt>',
    '',
    'Importer',
    '--------',
    "* Dovecot, ou tout serveur Maildir (Courier...) : copier <utilisateur>/Maildir à l'emplacement du",
    "  courrier de l'utilisateur (mail_location = maildir:~/Maildir), propriété de l'utilisateur du",
    '  courrier (chown -R vmail:vmail). Drapeaux, mots-clés, dates internes, UID, UIDVALIDITY et',
    "  abonnements sont conservés. Un dossier dont le nom contient « . » est écrit avec l'échappement du",
    '  greffon listescape de Dovecot (« . » devient \\2e) : activez-le avec',
    '  mail_plugins = $mail_plugins listescape.',
    '* Thunderbird : avec le module ImportExportTools NG, « Importer un fichier mbox », un .mbox par',
    '  dossier. mutt/neomutt : mutt -f <dossier>.mbox',
    "* Tout serveur IMAP : servir l'arborescence Maildir avec Dovecot et copier avec imapsync, ou",
    '  envoyer (APPEND) chaque fichier .eml avec les drapeaux et la date interne de manifest.jsonl.',
    '* Les fichiers mbox sont au format mboxrd : chaque message suit une ligne « From <expéditeur> <date> »',
    "  et est suivi d'une ligne vide ; toute ligne commençant par « >...From » a reçu un « > » de plus",
    '  (en retirer un pour la retrouver). Un message qui ne finissait pas par un saut de ligne en reçoit',
    '  un : sa longueur exacte est « size » dans manifest.jsonl.',
    ...(info.options.mboxStatusHeaders
      ? [
          '  Dans cet export, chaque message mbox commence par trois lignes ajoutées, Status:, X-Status: et',
          '  X-Keywords: (ses drapeaux) ; le message exact est ce qui les suit.',
        ]
      : []),
    '* Hors Maildir, les noms de dossiers et de fichiers sont en Unicode ; les caractères refusés par',
    '  les systèmes de fichiers sont écrits %XX (octets UTF-8 en hexadécimal).',
  ];
  return `${en.join('\n')}\n\n\n${fr.join('\n')}\n`;
}
