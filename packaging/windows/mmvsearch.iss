; Inno Setup script for the Windows installer (UNTESTED: no Windows machine was available).
; Built by .github/workflows/installers.yml on windows-latest:
;   pyinstaller packaging/mmvsearch.spec  ->  build\bundle\mmvsearch\  (mmvsearch.exe + mmvsearch-app.exe)
;   iscc /DAppVersion=<version> packaging\windows\mmvsearch.iss  ->  dist\mmvsearch-<version>-windows-x64-setup.exe
; Installs per user by default (no admin rights needed); uninstalling removes the program folder
; only, never the library in %LOCALAPPDATA%\mmvsearch.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif

[Setup]
AppId={{6E3C2B8A-4F2D-4B1E-9C57-5D8A1F0B7E21}
AppName=mmvsearch
AppVersion={#AppVersion}
AppPublisher=mmvsearch developers
DefaultDirName={autopf}\mmvsearch
DefaultGroupName=mmvsearch
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=mmvsearch-{#AppVersion}-windows-x64-setup
SetupIconFile=mmvsearch.ico
UninstallDisplayIcon={app}\mmvsearch-app.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"
Name: "addtopath"; Description: "Add the mmvsearch command to PATH"; GroupDescription: "Command line:"

[Files]
Source: "..\..\build\bundle\mmvsearch\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\mmvsearch"; Filename: "{app}\mmvsearch-app.exe"
Name: "{group}\Uninstall mmvsearch"; Filename: "{uninstallexe}"
Name: "{autodesktop}\mmvsearch"; Filename: "{app}\mmvsearch-app.exe"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; \
  ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\mmvsearch-app.exe"; Description: "Start mmvsearch"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Path: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Path) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';') = 0;
end;
